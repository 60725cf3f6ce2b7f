package store

import "context"

// DeviceVersion is one entry of a versioned device list: a device's ID and
// its row version, which the store changes on every write to the device
// (any column, by any node of a cluster), so that a copy of the device
// rendered at one version is current exactly while the version stays.
type DeviceVersion struct {
	ID      string
	Version int64
}

// VersionedDevice is a device read together with its row version.
type VersionedDevice struct {
	Device
	Version int64
}

// DeviceLists is implemented by stores that can list devices by row
// version, so that callers may keep each device's rendering and reread
// only the devices that changed (the device list of GET /v1/devices).
// Stores without it are read whole.
type DeviceLists interface {
	// DeviceVersionsByOwner lists the IDs and row versions of a user's
	// devices in the order of DevicesByOwner.
	DeviceVersionsByOwner(ctx context.Context, userID string) ([]DeviceVersion, error)
	// DeviceVersionsByCustomer lists the IDs and row versions of a
	// customer's devices in the order of DevicesByCustomer.
	DeviceVersionsByCustomer(ctx context.Context, customerID string) ([]DeviceVersion, error)
	// DevicesByIDs returns the devices of ids that exist, with their row
	// versions, in no particular order.
	DevicesByIDs(ctx context.Context, ids []string) ([]VersionedDevice, error)
}

// DeviceListStamp identifies one state of a user's or a customer's device
// list: how many devices it has and their highest row version.
type DeviceListStamp struct {
	Count      int64
	MaxVersion int64
}

// DeviceListStamps is implemented by stores whose row versions are
// assigned in commit order, where a list's stamp changes whenever any
// device joins, leaves or changes, and never returns to an earlier value:
// a new version is above every version before it, and a device that
// leaves is written (and so no longer holds its old version).
type DeviceListStamps interface {
	// DeviceListStampByOwner returns the stamp of a user's list; exact
	// is false when the store cannot vouch for it (writers that may
	// commit versions out of order), and the caller must not rely on it.
	DeviceListStampByOwner(ctx context.Context, userID string) (s DeviceListStamp, exact bool, err error)
	// DeviceListStampByCustomer is DeviceListStampByOwner for a
	// customer's list.
	DeviceListStampByCustomer(ctx context.Context, customerID string) (s DeviceListStamp, exact bool, err error)
}
