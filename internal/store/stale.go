package store

import "errors"

// ErrStale reports a version-checked update of a record that another writer
// (often another server of the cluster) changed since it was read. Read the
// record again and redo the change.
var ErrStale = errors.New("store: record changed since it was read")
