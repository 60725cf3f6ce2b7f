package server

import (
	"log/slog"

	"github.com/wick-cloud/wick/internal/ratelimit"
	"github.com/wick-cloud/wick/internal/store"
)

// clusterRates returns the syncer that makes the API's request limits
// cluster-wide when st is shared by the servers of a cluster (PostgreSQL;
// docs/scaling.md, Limits), or nil: one server counts alone, at no cost.
func clusterRates(st store.Store, log *slog.Logger) *ratelimit.Shared {
	cs, ok := st.(interface {
		Shared() bool
		ratelimit.CountStore
	})
	if !ok || !cs.Shared() {
		return nil
	}
	return ratelimit.NewShared(cs, ratelimit.SharedConfig{Log: log})
}
