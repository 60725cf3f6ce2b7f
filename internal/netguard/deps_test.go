package netguard

import (
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// TestStandardLibraryOnly keeps netguard free of dependencies, so the API
// and the delivery engine can both use it.
func TestStandardLibraryOnly(t *testing.T) {
	doccheck.StandardLibraryOnly(t, doccheck.Sources(t))
}

// TestExportedNamesDocumented enforces a doc comment on every exported
// name (house style).
func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, doccheck.Sources(t))
}
