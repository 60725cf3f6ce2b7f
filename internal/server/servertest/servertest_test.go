package servertest

import (
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

func TestDocComments(t *testing.T) { doccheck.Exported(t, doccheck.Sources(t)) }
