package store

import (
	"context"
	"time"
)

// Device key algorithms.
const (
	KeyRSA = "rsa" // RSA-1024 device key of the TCP transport
	KeyECC = "ecc" // EC P-256 device key of the DTLS transport
)

// Device statuses.
const (
	DeviceStatusNormal   = "normal"
	DeviceStatusSafeMode = "safe_mode"
)

// Subscription scopes.
const (
	// ScopeMine delivers matching events of devices with the same owner.
	ScopeMine = "mine"
	// ScopeAll delivers every matching event the device may see.
	ScopeAll = "all"
	// ScopeDevicePrefix, followed by a device ID, delivers matching events
	// of that one device: "device:0123456789abcdef01234567".
	ScopeDevicePrefix = "device:"
)

// Subscription is one event-name prefix a device subscribed to. Devices
// send their subscriptions after a full handshake only, so the store keeps
// them across reconnects.
type Subscription struct {
	Prefix string `json:"prefix"`
	// Scope is ScopeMine, ScopeAll or ScopeDevicePrefix plus a device ID.
	Scope string `json:"scope"`
}

// Device is a device known to the cloud: its identity and key, who owns it,
// its connection state and what its firmware exposes.
//
// A device is owned by a user (OwnerID), by a customer of a product
// (CustomerID), or by no one; never by both. A non-empty Name is unique,
// ignoring case, among the devices of one user and among the devices of one
// customer; unclaimed devices may share names. Claiming gives a device
// without a name a generated one (Devices.ClaimDevice).
//
// Lists (Functions, Variables, Subscriptions) are nil when empty. UpdatedAt
// follows the fields an owner or the API edits (name, notes, ownership,
// product, flags, key); connection state, Describe and subscriptions do not
// change it.
type Device struct {
	ID   string // 24 lower-case hex characters
	Name string // "" when unnamed
	// OwnerID is the owning user's ID; "" when unclaimed or customer-owned.
	OwnerID string
	// CustomerID is the owning customer's ID; "" when not customer-owned.
	CustomerID string
	ProductID  int64 // 0 when in no product
	PlatformID int   // from the device's Hello; 0 is also the Core
	// PublicKey is the device's public key as canonical SPKI DER; nil when
	// the device is known by ID only (added to a product before it was
	// provisioned).
	PublicKey    []byte
	KeyAlgorithm string // KeyRSA, KeyECC, or "" with no key
	Notes        string

	// Connection state, written by the gateway.
	Online bool
	// Node names the gateway process holding the connection; "" offline.
	Node string
	// SessionID identifies the connection; "" offline. A newer connection
	// of the same device replaces it.
	SessionID       string
	LastHeard       *time.Time // nil: never heard
	LastHandshakeAt *time.Time // nil: never connected
	LastIP          string     // "" when unknown

	// Reported by the device.
	SystemVersion       string // Device OS version, such as "3.3.1"; "" unknown
	SystemModuleVersion int    // system module version from the Hello, such as 3302
	// ProductVersion is the product firmware version from the Hello; 0 when
	// none (the gateway maps the Hello's 0xFFFF to 0).
	ProductVersion int
	Functions      []string          // function names, in the device's order
	Variables      map[string]string // name -> "int32", "double", "string" or "bool"
	Subscriptions  []Subscription
	Status         string // DeviceStatusNormal or DeviceStatusSafeMode
	// FirmwareUpdatesEnabled is what the device last reported; true until
	// it reports otherwise.
	FirmwareUpdatesEnabled bool

	// Set by the owner or the product team.
	Development           bool
	Quarantined           bool
	Denied                bool
	FirmwareUpdatesForced bool

	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeviceSession is what the gateway records when a device completes its
// handshake and Hello.
type DeviceSession struct {
	Node      string    // the gateway process holding the connection
	SessionID string    // unique per connection
	IP        string    // the device's address as the gateway sees it
	At        time.Time // handshake time; zero means now
	// PlatformID is always recorded.
	PlatformID int
	// ProductID, when non-zero, moves the device into that product; 0
	// keeps the stored product. As connection state, it leaves UpdatedAt.
	ProductID           int64
	ProductVersion      int // 0 when none
	SystemModuleVersion int
}

// DeviceOffline is one device to mark offline (Devices.SetDevicesOffline).
type DeviceOffline struct {
	ID        string
	SessionID string    // only if this is still the device's session
	At        time.Time // its last-heard time; zero means now
}

// DescribePart selects the parts of a Describe to store. The values are
// those of the protocol's Describe flags.
type DescribePart uint8

// Describe parts.
const (
	DescribeSystem      DescribePart = 0x01 // SystemVersion and Status
	DescribeApplication DescribePart = 0x02 // Functions and Variables
)

// Describe is what a device describes of itself. Devices describe the
// system and the application separately, so only the parts named in Parts
// are stored; the others keep their values.
type Describe struct {
	Parts DescribePart

	// Application part.
	Functions []string
	Variables map[string]string

	// System part.
	SystemVersion string
	Status        string // "" is DeviceStatusNormal
}

// Device sort orders of DevicesByProduct.
type DeviceSort int

// Device sort orders. Devices that never connected sort last in either
// direction; ties break on ID, ascending.
const (
	SortByLastConnection  DeviceSort = iota // last handshake
	SortByID                                // device ID
	SortByFirmwareVersion                   // product firmware version
)

// DeviceFilter selects and orders a product's devices. The zero value lists
// every device, most recently connected first.
type DeviceFilter struct {
	// IDContains keeps devices whose ID contains it, ignoring case.
	IDContains string
	// NameContains keeps devices whose name contains it, ignoring case.
	NameContains string
	// Quarantined, when not nil, keeps devices whose Quarantined flag
	// equals it.
	Quarantined *bool
	Sort        DeviceSort
	// Ascending reverses the default, descending, direction.
	Ascending bool
	Page      Page
}

// Devices holds devices.
//
// The methods that change one device by ID fail with ErrNotFound when it
// is absent, except ProvisionDevice, which creates it, SetDeviceOffline,
// which reports that it did not apply, and TouchDevices, which ignores it.
type Devices interface {
	// ProvisionDevice registers device id, creating it when absent. A
	// non-empty der (canonical SPKI DER of algorithm alg) replaces its
	// key; an empty der keeps the stored key, or creates the device
	// without one. A non-zero productID moves it into that product. It
	// returns the device as stored.
	//
	// An ECC key (KeyECC) is the device's identity on the DTLS transport,
	// so it belongs to one device only: ProvisionDevice fails with
	// ErrConflict, changing nothing, when another device has that ECC key.
	// RSA keys are not indexed (a Gen 2 device names itself in its
	// handshake). A key that differs from the stored one removes the
	// device's saved DTLS sessions in the same transaction.
	ProvisionDevice(ctx context.Context, id, alg string, der []byte, productID int64) (*Device, error)
	// DeviceByID returns the device or ErrNotFound.
	DeviceByID(ctx context.Context, id string) (*Device, error)
	// DeviceByPublicKey returns the device whose ECC key is spkiDER
	// (canonical SPKI DER, compared byte for byte), found through the key
	// index (KeyFingerprint), or ErrNotFound.
	DeviceByPublicKey(ctx context.Context, spkiDER []byte) (*Device, error)
	// DeviceByOwnerName returns the device that user userID owns under
	// that name, ignoring case, or ErrNotFound.
	DeviceByOwnerName(ctx context.Context, userID, name string) (*Device, error)
	// DeviceByCustomerName returns the device that customer customerID
	// owns under that name, ignoring case, or ErrNotFound.
	DeviceByCustomerName(ctx context.Context, customerID, name string) (*Device, error)
	// DevicesByOwner lists a user's devices, the most recently connected
	// first, those never connected last, then by ID. An empty userID
	// lists nothing.
	DevicesByOwner(ctx context.Context, userID string) ([]Device, error)
	// DevicesByCustomer lists a customer's devices in the same order.
	DevicesByCustomer(ctx context.Context, customerID string) ([]Device, error)
	// DevicesByProduct returns one page of the product's devices that
	// match f, in f's order, and how many match in all.
	DevicesByProduct(ctx context.Context, productID int64, f DeviceFilter) ([]Device, int, error)
	// CountDevices returns how many devices exist.
	CountDevices(ctx context.Context) (int, error)
	// UpdateDevice replaces the fields an owner or a product team edits:
	// Name, Notes, OwnerID, CustomerID, ProductID, Development,
	// Quarantined, Denied, FirmwareUpdatesForced and UpdatedAt (now, when
	// zero). It fails with ErrConflict, changing nothing, when the new
	// owner already has a device of that name, and with another error when
	// both OwnerID and CustomerID are set.
	UpdateDevice(ctx context.Context, d *Device) error
	// ClaimDevice makes the user ownerUserID, or the customer customerID
	// (one of them is empty), the device's only owner and returns the
	// device. A device without a name gets a generated one (DeviceNames),
	// unique among the new owner's devices; so does a device whose name
	// the new owner already gives another device. Otherwise the device
	// keeps its name (docs/api.md, Device names). It fails with
	// ErrConflict only when NameAttempts candidates were all taken.
	ClaimDevice(ctx context.Context, id, ownerUserID, customerID string) (*Device, error)
	// NameOwnedDevices gives a generated name to every device that has an
	// owner, user or customer, but no name (devices claimed before Wick
	// named them), and returns how many it named.
	NameOwnedDevices(ctx context.Context) (int, error)
	// UnclaimDevice removes the device's owner, user or customer. The
	// device keeps its name, notes and product.
	UnclaimDevice(ctx context.Context, id string) error
	// SetDeviceOnline records a new connection: Online, Node, SessionID,
	// LastIP, LastHandshakeAt, LastHeard and the Hello's fields. It
	// replaces any previous session, and returns the device.
	SetDeviceOnline(ctx context.Context, id string, s DeviceSession) (*Device, error)
	// SetDeviceOffline marks the device offline and clears Node and
	// SessionID, only if sessionID is still its session: a newer
	// connection may have replaced it. LastHeard becomes at unless it is
	// later. It reports whether it applied; false, too, for an absent
	// device or an empty sessionID.
	SetDeviceOffline(ctx context.Context, id, sessionID string, at time.Time) (bool, error)
	// SetDevicesOffline is SetDeviceOffline for many devices in one
	// transaction: each device of offs goes offline only if its session
	// is still the one given, with LastHeard its At unless the stored one
	// is later (a zero At is now). applied[i] reports whether offs[i]
	// took effect. Each device appears at most once; absent devices and
	// empty sessions are skipped. Callers write a large fleet in chunks of
	// a few thousand (a gateway's shutdown does).
	SetDevicesOffline(ctx context.Context, offs []DeviceOffline) (applied []bool, err error)
	// SetDeviceDescribe stores the parts of d named by d.Parts.
	SetDeviceDescribe(ctx context.Context, id string, d Describe) error
	// SetDeviceSubscriptions replaces the device's subscriptions.
	SetDeviceSubscriptions(ctx context.Context, id string, subs []Subscription) error
	// SetFirmwareUpdatesEnabled records whether the device accepts
	// firmware updates, as it reported.
	SetFirmwareUpdatesEnabled(ctx context.Context, id string, enabled bool) error
	// TouchDevices sets LastHeard of many devices in one transaction: each
	// becomes the given time unless the stored one is later. Unknown IDs
	// are ignored.
	TouchDevices(ctx context.Context, lastHeard map[string]time.Time) error
	// ResetNode marks offline every device that gateway node holds from a
	// session whose handshake was before at, as after a crash of that
	// node, and returns their IDs. An empty node resets nothing.
	ResetNode(ctx context.Context, node string, at time.Time) ([]string, error)
	// ResetNodeBatch is ResetNode for at most limit devices (limit > 0)
	// in one transaction, returning their IDs: a caller repeats it until
	// it returns fewer than limit, so that no transaction holds the store
	// for a whole fleet.
	ResetNodeBatch(ctx context.Context, node string, at time.Time, limit int) ([]string, error)
	// DeleteDevice removes the device, its saved DTLS sessions and its
	// firmware state.
	DeleteDevice(ctx context.Context, id string) error
}

// ClaimCode is a pending claim: the device that reports the code is
// claimed to its creator, a user (UserID) or a customer (CustomerID).
// Only the SHA-256 hex hash of the code is stored.
type ClaimCode struct {
	Hash       string
	UserID     string // the creating user; "" for a customer's code
	CustomerID string // the creating customer; "" for a user's code
	// ProductID is the product the code was created for, or 0.
	ProductID int64
	ExpiresAt time.Time
	CreatedAt time.Time
}

// ClaimCodes holds claim codes.
//
// Besides these methods, Tokens.DeleteExpired also removes expired claim
// codes, Users.DeleteUser and Customers.DeleteCustomer remove the deleted
// owner's claim codes and unclaim its devices, in the same transaction.
type ClaimCodes interface {
	// CreateClaimCode inserts c, setting CreatedAt when zero. It fails with
	// ErrConflict if the hash exists.
	CreateClaimCode(ctx context.Context, c *ClaimCode) error
	// ClaimCodeByHash returns the claim code without using it up, so that
	// a claim can be checked before the code is taken. It fails with
	// ErrNotFound if absent or expired before now.
	ClaimCodeByHash(ctx context.Context, hash string, now time.Time) (*ClaimCode, error)
	// TakeClaimCode atomically deletes and returns the claim code, so that
	// it claims at most one device. It fails with ErrNotFound if absent or
	// expired before now (an expired code is deleted too).
	TakeClaimCode(ctx context.Context, hash string, now time.Time) (*ClaimCode, error)
	// DeleteClaimCodesByUser removes a user's claim codes and returns how
	// many went.
	DeleteClaimCodesByUser(ctx context.Context, userID string) (int, error)
	// DeleteClaimCodesByCustomer removes a customer's claim codes and
	// returns how many went.
	DeleteClaimCodesByCustomer(ctx context.Context, customerID string) (int, error)
}
