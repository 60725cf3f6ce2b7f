package device

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

// allowedImport reports whether a non-test file of the public SDK may
// import p: the standard library, the protocol packages and the SDK's own
// packages — never internal/..., so the SDK stays usable outside Wick.
func allowedImport(p string) bool {
	const module = "github.com/wick-cloud/wick/"
	switch {
	case p == module+"protocol", p == module+"protocol/dtls", strings.HasPrefix(p, module+"sdk/device"):
		return true
	case strings.HasPrefix(p, module):
		return false
	}
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// goFiles returns the non-test Go files of the SDK's packages.
func goFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestImportsOnlyProtocolAndStdlib(t *testing.T) {
	for _, path := range goFiles(t) {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowedImport(p) {
				t.Errorf("%s imports %s: sdk/device may import only the standard library and protocol", path, p)
			}
		}
	}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"net", true}, {"crypto/rsa", true}, {"github.com/wick-cloud/wick/protocol", true},
		{"github.com/wick-cloud/wick/internal/gateway", false}, {"golang.org/x/crypto/ssh", false},
	} {
		if got := allowedImport(tt.path); got != tt.want {
			t.Errorf("allowedImport(%q) = %v; want %v", tt.path, got, tt.want)
		}
	}
}

func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, goFiles(t))
}
