package cloud

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// sourceFiles returns the package's non-test Go files.
func sourceFiles(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.go") {
			files = append(files, f)
		}
	}
	return files
}

// TestImportsOnlyStdlib keeps the public SDK free of Wick's internal
// packages and of third-party modules.
func TestImportsOnlyStdlib(t *testing.T) {
	for _, path := range sourceFiles(t) {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: sdk/cloud may import only the standard library", path, p)
			}
		}
	}
}

func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, sourceFiles(t))
}
