package metrics

import (
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// TestStandardLibraryOnly keeps metrics free of dependencies (no
// Prometheus client): any package may register a collector without
// pulling anything in.
func TestStandardLibraryOnly(t *testing.T) {
	doccheck.StandardLibraryOnly(t, doccheck.Sources(t))
}

// TestExportedNamesDocumented enforces a doc comment on every exported
// name (house style).
func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, doccheck.Sources(t))
}
