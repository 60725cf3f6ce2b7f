package store

import (
	"cmp"
	"context"
	"strings"
)

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

// DeviceRowVersions is implemented by stores that can read one device's
// row version without the rest of the row, so that a caller holding the
// device rendered at that version need not read it again.
type DeviceRowVersions interface {
	// DeviceVersion returns the row version of device id, or ErrNotFound.
	DeviceVersion(ctx context.Context, id string) (int64, error)
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

// ProductDeviceList is the state of a product's device list as the store
// keeps it: how many devices the product has, and an order version that
// moves whenever a device joins or leaves the product or changes a field
// the list sorts or filters on (last handshake, product firmware version,
// quarantined, name). Presence, describes and notes leave the version as
// it is. A version never goes back, so a product's order cached under one
// version stays exact while the version stays.
type ProductDeviceList struct {
	Devices int64
	Version int64
}

// ProductDeviceKey is what a product's device list sorts and filters on,
// for one device.
type ProductDeviceKey struct {
	ID string
	// NameKey is the device's name in lower case.
	NameKey string
	// LastHandshake is the last handshake in Unix milliseconds, 0 with
	// HasHandshake false when the device never connected.
	LastHandshake  int64
	HasHandshake   bool
	ProductVersion int
	Quarantined    bool
}

// ProductDeviceLists is implemented by stores that keep a product's
// device list state (ProductDeviceList), so that a caller may keep the
// product's order in memory and page through it without counting and
// sorting the product for every page (GET /v1/products/:p/devices).
type ProductDeviceLists interface {
	// ProductDeviceListState returns the product's list state; the zero
	// state for a product without devices.
	ProductDeviceListState(ctx context.Context, productID int64) (ProductDeviceList, error)
	// ProductDeviceKeys returns the list state and the keys of all the
	// product's devices, read in one snapshot, in no particular order.
	ProductDeviceKeys(ctx context.Context, productID int64) (ProductDeviceList, []ProductDeviceKey, error)
	// ProductDeviceVersions returns the row versions of the devices of ids
	// that exist and are in the product, in no particular order.
	ProductDeviceVersions(ctx context.Context, productID int64, ids []string) ([]DeviceVersion, error)
	// ProductDeviceChanges returns, read in one snapshot, the product's
	// list state and what moved its order version past since: the keys
	// of the devices that changed and are in the product now, and the IDs
	// of those that left it, each once, in no particular order. complete
	// is false when the store no longer holds every change since that
	// version (it keeps a bounded number per product), and the caller
	// must read all the keys again (ProductDeviceKeys).
	ProductDeviceChanges(ctx context.Context, productID, since int64) (l ProductDeviceList, changed []ProductDeviceKey, gone []string, complete bool, err error)
}

// ProductDevicePageRead is what a page of a product's cached device order
// reads from the store (ProductDevicePages).
type ProductDevicePageRead struct {
	// State, Changed, Gone and Complete are ProductDeviceChanges'
	// answer since the version asked about.
	State    ProductDeviceList
	Changed  []ProductDeviceKey
	Gone     []string
	Complete bool
	// Versions are ProductDeviceVersions' answer for the IDs asked about.
	Versions []DeviceVersion
	// Owners are, read with Versions, the owners of those devices that
	// have one, each with the name a device list shows for it.
	Owners []DeviceOwnerName
	// Rows are the devices, with their row versions, that are in the
	// product and were logged in the ChangedRows versions right after the
	// one asked about, in no particular order.
	Rows []VersionedDevice
}

// DeviceOwnerName is the owner of a device as a device list shows it:
// the username of its user (OwnerID), else the e-mail of its customer
// (CustomerID); Name is "" when that account no longer exists.
type DeviceOwnerName struct {
	OwnerID, CustomerID, Name string
}

// ChangedRows bounds the versions after the one asked about whose
// devices' rows ProductDevicePages reads.
const ChangedRows = 32

// ProductDevicePages is implemented by stores that read what a page of a
// cached product device order needs together: on PostgreSQL the three
// statements go in one round trip. Each statement reads the current
// state, so the later ones may see writes the first did not.
type ProductDevicePages interface {
	// ReadProductDevicePage returns ProductDeviceChanges(productID, since),
	// ProductDeviceVersions(productID, ids) with the owners of those
	// devices (ProductDevicePageRead.Owners) and the rows of the devices
	// that changed right after since (ProductDevicePageRead.Rows).
	ReadProductDevicePage(ctx context.Context, productID, since int64, ids []string) (ProductDevicePageRead, error)
}

// Matches reports whether the device of k passes f's filters (IDContains,
// NameContains, Quarantined), as DevicesByProduct applies them.
func (f *DeviceFilter) Matches(k *ProductDeviceKey) bool {
	if f.Quarantined != nil && k.Quarantined != *f.Quarantined {
		return false
	}
	if f.IDContains != "" && !strings.Contains(k.ID, strings.ToLower(f.IDContains)) {
		return false
	}
	if f.NameContains != "" && !strings.Contains(k.NameKey, strings.ToLower(f.NameContains)) {
		return false
	}
	return true
}

// CompareProductDevices orders a before b (-1), after it (1) or as equal
// (0) in the order of DevicesByProduct for sort and direction: devices
// that never connected last in either direction, ties broken on ID,
// ascending.
func CompareProductDevices(a, b *ProductDeviceKey, sort DeviceSort, ascending bool) int {
	dir := -1
	if ascending {
		dir = 1
	}
	switch sort {
	case SortByID:
		return dir * strings.Compare(a.ID, b.ID)
	case SortByFirmwareVersion:
		if c := cmp.Compare(a.ProductVersion, b.ProductVersion); c != 0 {
			return dir * c
		}
	default:
		if a.HasHandshake != b.HasHandshake {
			if a.HasHandshake {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(a.LastHandshake, b.LastHandshake); c != 0 {
			return dir * c
		}
	}
	return strings.Compare(a.ID, b.ID)
}
