package dtls

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// TestImports keeps the package pure: nothing of Wick's, and outside the
// standard library only the CCM mode (docs/dependencies.md).
func TestImports(t *testing.T) {
	allowed := map[string]bool{"github.com/pion/dtls/v4/pkg/crypto/ccm": true}
	for _, path := range doccheck.Sources(t) {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") && !allowed[p] {
				t.Errorf("%s imports %s: dtls uses the standard library and pion's CCM only", path, p)
			}
		}
	}
}

// TestExportedNamesDocumented enforces a doc comment on every exported
// top-level name.
func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, doccheck.Sources(t))
}
