package metrics

import (
	goparser "go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// sources lists the package's non-test Go files.
func sources(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var src []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			src = append(src, f)
		}
	}
	return src
}

// TestStandardLibraryOnly keeps metrics free of dependencies (no
// Prometheus client): any package may register a collector without
// pulling anything in.
func TestStandardLibraryOnly(t *testing.T) {
	fset := token.NewFileSet()
	for _, f := range sources(t) {
		af, err := goparser.ParseFile(fset, f, nil, goparser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
				t.Errorf("%s imports %s: metrics uses only the standard library", f, p)
			}
		}
	}
}

// TestExportedNamesDocumented enforces a doc comment on every exported
// name (house style).
func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, sources(t))
}
