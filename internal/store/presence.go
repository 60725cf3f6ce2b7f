package store

import (
	"context"
	"time"
)

// PresenceUpdate is one change of a device's connection state, as the
// gateway's presence writer batches them: an online (SetDeviceOnline's
// write), an offline (SetDeviceOffline's), or a last-heard time
// (TouchDevices'), or several of them in that order.
type PresenceUpdate struct {
	DeviceID string
	// Online, when set, records the new session as SetDeviceOnline does.
	Online *DeviceSession
	// OfflineSession, when not empty, marks the device offline as
	// SetDeviceOffline does, after Online: only if the session is still
	// the device's, with last heard OfflineAt unless it is later.
	OfflineSession string
	OfflineAt      time.Time
	// LastHeard, when not zero, becomes the last-heard time unless the
	// stored one is later, after the rest.
	LastHeard time.Time
}

// PresenceBatcher is implemented by stores that write many presence
// updates in one transaction.
type PresenceBatcher interface {
	// ApplyPresence applies the updates in order in one transaction,
	// all or none. applied[i] reports whether update i's offline took
	// effect (false without one). Unknown devices are skipped.
	ApplyPresence(ctx context.Context, updates []PresenceUpdate) (applied []bool, err error)
}
