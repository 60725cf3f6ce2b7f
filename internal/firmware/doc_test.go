package firmware

import (
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// TestExportedNamesDocumented enforces a doc comment on every exported
// top-level name.
func TestExportedNamesDocumented(t *testing.T) {
	doccheck.Exported(t, doccheck.Sources(t))
}
