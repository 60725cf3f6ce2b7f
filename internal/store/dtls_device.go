package store

import (
	"context"
	"time"
)

// DeviceAddresses is implemented by stores that can record the new address
// of a device during its session (a Gen 3 session that moved to another
// address and port, docs/device-protocol.md#39-the-dtls-transport), without
// recording a new connection.
type DeviceAddresses interface {
	// SetDeviceIP sets LastIP of the device to ip only if sessionID is
	// still its session, and reports whether it applied.
	SetDeviceIP(ctx context.Context, id, sessionID, ip string) (bool, error)
}

// DeviceDTLSSessions is implemented by stores that find saved DTLS
// sessions by device, so that a gateway can reach a Gen 3 device on its
// saved session when the device has no live session (after a restart).
type DeviceDTLSSessions interface {
	// LatestDTLSSession returns the device's most recently saved session,
	// or ErrNotFound.
	LatestDTLSSession(ctx context.Context, deviceID string) (*DTLSSession, error)
	// RecentDTLSSessions returns a page of at most limit saved sessions,
	// for reaching the devices after a restart: each the most recently
	// saved session of its device, saved at or after since, of a device
	// the store lists offline, ordered by UpdatedAt and then CID, starting
	// after the session after (nil: from the first). State is left empty.
	RecentDTLSSessions(ctx context.Context, since time.Time, after *DTLSSession, limit int) ([]DTLSSession, error)
}
