package store

import (
	"context"
	"time"
)

// Counters are expiring counters shared by every server of a cluster: the
// failed-login counts, lockouts and known login addresses of the auth
// guard live here when servers share a database (docs/scaling.md,
// Limits). Keys are opaque; an expired counter reads as absent.
type Counters interface {
	// AddCounter counts one event for key in a fixed window: when the key
	// is absent or its window has ended by now, a new window of length
	// window starts at now with a count of 1; otherwise the count goes up
	// by one. It returns the new count and the window's end. It is atomic
	// across servers.
	AddCounter(ctx context.Context, key string, now time.Time, window time.Duration) (count int64, expires time.Time, err error)
	// Counter returns key's count and expiry, or 0 and the zero time when
	// the key is absent or expired at now.
	Counter(ctx context.Context, key string, now time.Time) (count int64, expires time.Time, err error)
	// SetCounter sets key's count and expiry, replacing any window.
	SetCounter(ctx context.Context, key string, count int64, expires time.Time) error
	// DeleteCounter removes key; an absent key is not an error.
	DeleteCounter(ctx context.Context, key string) error
	// DeleteExpiredCounters removes the counters expired at now and
	// returns how many.
	DeleteExpiredCounters(ctx context.Context, now time.Time) (int, error)
}
