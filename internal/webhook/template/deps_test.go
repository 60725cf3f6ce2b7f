package template

import (
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// TestStandardLibraryOnly keeps the renderer free of dependencies, so
// that any package (the API's validation, the console) may use it.
func TestStandardLibraryOnly(t *testing.T) {
	doccheck.StandardLibraryOnly(t, doccheck.Sources(t))
}

// TestExportedNamesDocumented enforces a doc comment on every exported
// name (house style).
func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, doccheck.Sources(t))
}
