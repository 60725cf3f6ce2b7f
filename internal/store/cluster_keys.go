package store

import "context"

// ClusterKeys holds the small, write-once values that every server of a
// cluster must share: the device server keys (sealed by the caller) and a
// check value of the secret key (docs/scaling.md, One identity). A value is
// never replaced: the first writer wins and everyone reads the winner's.
type ClusterKeys interface {
	// ClusterKey returns the value stored under name, or ErrNotFound.
	ClusterKey(ctx context.Context, name string) ([]byte, error)
	// InsertClusterKey stores value under name unless a value is there
	// already, and returns the stored value (value itself, or the one a
	// concurrent or earlier writer stored first).
	InsertClusterKey(ctx context.Context, name string, value []byte) ([]byte, error)
}

// SharedStore is implemented by a store that several servers can share
// (PostgreSQL); Shared reports whether this one is.
type SharedStore interface {
	// Shared reports whether other servers may use this store at the same
	// time, so that per-process state must move into it.
	Shared() bool
}
