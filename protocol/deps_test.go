package protocol

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// TestImportsOnlyStandardLibrary keeps the wire package pure: it imports
// nothing from github.com/wick-cloud/wick and, today, nothing outside the
// standard library, so sdk/device stays light and the gateway's dependencies
// point one way (docs: dependency direction).
func TestImportsOnlyStandardLibrary(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Subpackages (protocol/dtls) keep their own import rules in their own tests.
		if d.IsDir() && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/wick-cloud/wick") {
				t.Errorf("%s imports %s: protocol must not depend on the rest of Wick", path, p)
			}
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: protocol uses only the standard library", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestExportedNamesDocumented enforces a doc comment on every exported
// top-level name (house style). A grouped const/var block may share the
// group's comment; a line comment also counts for a grouped name.
func TestExportedNamesDocumented(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var src []string
	for _, name := range files {
		if !strings.HasSuffix(name, "_test.go") {
			src = append(src, name)
		}
	}
	doccheck.Exported(t, src)
}
