package module

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// TestImportsOnlyStandardLibrary keeps the package pure, like protocol:
// nothing of Wick's and nothing outside the standard library.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	for _, path := range doccheck.Sources(t) {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: module uses the standard library only", path, p)
			}
		}
	}
}

// TestExportedNamesDocumented enforces a doc comment on every exported
// top-level name.
func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, doccheck.Sources(t))
}
