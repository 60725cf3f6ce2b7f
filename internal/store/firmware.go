package store

import (
	"context"
	"time"
)

// FirmwareBinaries holds firmware binaries by content: each distinct binary
// is stored once, under the lower-case hex SHA-256 of its bytes, however
// many products, releases and flashes name it. Binaries are never changed;
// one nothing needs any more is deleted by DeleteUnusedFirmwareBinaries.
type FirmwareBinaries interface {
	// PutFirmwareBinary stores data, unless a binary with the same hash is
	// already stored, and returns its SHA-256 hex. Either way the binary's
	// last use becomes now, so that the collector leaves it alone while
	// the caller goes on to name it (FirmwareGC.UsedBefore).
	PutFirmwareBinary(ctx context.Context, data []byte) (sha256hex string, err error)
	// FirmwareBinary returns the binary with that SHA-256 hex, or
	// ErrNotFound.
	FirmwareBinary(ctx context.Context, sha256hex string) ([]byte, error)
	// DeleteUnusedFirmwareBinaries deletes, in one statement, every binary
	// that g says nothing needs, and returns how many it deleted.
	DeleteUnusedFirmwareBinaries(ctx context.Context, g FirmwareGC) (int, error)
}

// FirmwareGC says which firmware binaries are still needed. A binary is
// kept while any of these holds: a product firmware version names it; a
// device update names it whose latest activity (its end, else its start)
// is at or after UpdatesSince; it was last stored at or after UsedBefore.
type FirmwareGC struct {
	UsedBefore   time.Time
	UpdatesSince time.Time
}

// ProductFirmware is one firmware version uploaded to a product: the
// binary (by hash) with what its module header says and what the team
// wrote about it. (ProductID, Version) is unique.
type ProductFirmware struct {
	ProductID   int64
	Version     int // the product version embedded in the binary
	Title       string
	Description string
	FileName    string // the uploaded file's name, such as "firmware.bin"
	Hash        string // SHA-256 hex of the binary (FirmwareBinaries)
	Size        int    // bytes
	PlatformID  int    // from the module header
	UploadedBy  string // username of the uploader; "" for a product token
	// ProductDefault marks the release every product device should run
	// unless locked to another version; at most one per product.
	ProductDefault bool
	ReleasedAt     *time.Time // when it last became the product default; nil never
	ReleasedBy     string     // username who released it
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ProductFirmwares holds the firmware versions of products.
type ProductFirmwares interface {
	// CreateProductFirmware inserts f, setting the timestamps when zero.
	// ProductDefault and the release fields are ignored (a new version is
	// not released). It fails with ErrConflict if the product has that
	// version.
	CreateProductFirmware(ctx context.Context, f *ProductFirmware) error
	// ProductFirmware returns one version of a product's firmware or
	// ErrNotFound.
	ProductFirmware(ctx context.Context, productID int64, version int) (*ProductFirmware, error)
	// ProductFirmwares lists a product's firmware, newest version first.
	ProductFirmwares(ctx context.Context, productID int64) ([]ProductFirmware, error)
	// UpdateProductFirmware replaces Title and Description (and UpdatedAt,
	// now when zero) of the version f names, or fails with ErrNotFound.
	UpdateProductFirmware(ctx context.Context, f *ProductFirmware) error
	// ReleaseProductFirmware makes that version the product default, and
	// no other, recording who and when, in one transaction; it returns the
	// released version. It fails with ErrNotFound if the version is absent.
	ReleaseProductFirmware(ctx context.Context, productID int64, version int, by string, at time.Time) (*ProductFirmware, error)
	// UnreleaseProductFirmware leaves the product without a default
	// release. It is not an error when it had none.
	UnreleaseProductFirmware(ctx context.Context, productID int64) error
	// ProductDefaultFirmware returns the product default, or ErrNotFound
	// when none is released.
	ProductDefaultFirmware(ctx context.Context, productID int64) (*ProductFirmware, error)
	// DeleteProductFirmware removes one version, or fails with
	// ErrNotFound. The binary stays (others may name it).
	DeleteProductFirmware(ctx context.Context, productID int64, version int) error
}

// OTA statuses of a device's latest firmware update.
const (
	OTAStarted = "started" // the device accepted the transfer
	OTASuccess = "success" // the device took the new firmware
	OTAFailed  = "failed"  // refused, broken off, timed out or rejected
)

// DeviceFirmware is the firmware state the cloud keeps for one device:
// the version a product team locked it to, and the latest over-the-air
// update sent to it and how that ended.
type DeviceFirmware struct {
	DeviceID  string
	ProductID int64 // the product of the latest lock or update; 0 none
	// DesiredVersion is the product firmware version the device is locked
	// to; nil follows the product default.
	DesiredVersion *int

	// The latest update; Hash is "" when none was sent.
	Hash       string
	Version    int    // product version of that binary; 0 for a plain flash
	Status     string // OTAStarted, OTASuccess or OTAFailed
	Error      string // why it failed
	Attempts   int    // updates started in a row with this same Hash
	StartedAt  *time.Time
	FinishedAt *time.Time
	UpdatedAt  time.Time
}

// DeviceOTA is one update being started (DeviceFirmwares.StartDeviceOTA).
type DeviceOTA struct {
	ProductID int64
	Hash      string
	Version   int
	At        time.Time // zero means now
	// StaleAfter is how long a started update may run: an update started
	// longer ago than that no longer blocks a new one. Zero never lets a
	// started update go stale.
	StaleAfter time.Duration
}

// DeviceFirmwares holds the per-device firmware state.
type DeviceFirmwares interface {
	// DeviceFirmware returns the device's firmware state, or ErrNotFound
	// when the cloud never locked or updated it.
	DeviceFirmware(ctx context.Context, deviceID string) (*DeviceFirmware, error)
	// DeviceFirmwaresByProduct lists the firmware state of the devices of
	// one product (by the ProductID recorded with them), ordered by device
	// ID.
	DeviceFirmwaresByProduct(ctx context.Context, productID int64) ([]DeviceFirmware, error)
	// SetDeviceFirmwareLock locks the device to version of product
	// productID, or, with a nil version, unlocks it.
	SetDeviceFirmwareLock(ctx context.Context, deviceID string, productID int64, version *int) error
	// StartDeviceOTA records that an update of the device begins: Status
	// OTAStarted, the hash and version, Attempts one more (1 when the hash
	// differs from the previous update's), StartedAt, no
	// FinishedAt or Error. It fails with ErrConflict, changing nothing,
	// while another update of the device is started and not stale: one
	// transfer at a time per device, across every server sharing the
	// database.
	StartDeviceOTA(ctx context.Context, deviceID string, o DeviceOTA) error
	// FinishDeviceOTA records the outcome of the started update of hash:
	// OTASuccess when errText is "", else OTAFailed with errText. It
	// reports whether it applied: false when no update of that hash is
	// started (already finished, or replaced by another).
	FinishDeviceOTA(ctx context.Context, deviceID, hash, errText string, at time.Time) (bool, error)
	// MarkDeviceOTASucceeded records that the device runs the update of
	// hash after all (it came back with its version although the update
	// was reported failed): status OTASuccess, no error, FinishedAt at. It
	// reports whether it applied: false when the latest update is not of
	// hash or is already a success.
	MarkDeviceOTASucceeded(ctx context.Context, deviceID, hash string, at time.Time) (bool, error)
	// DeleteDeviceFirmware forgets the device's firmware state; it is not
	// an error when there is none.
	DeleteDeviceFirmware(ctx context.Context, deviceID string) error
	// ClaimOTASlot reserves the next start of an automatic update in the
	// product, on a schedule every server sharing the database follows:
	// the slots are interval apart and none is before now. It returns the
	// reserved slot's time; the caller starts its update then, not before.
	ClaimOTASlot(ctx context.Context, productID int64, now time.Time, interval time.Duration) (time.Time, error)
}
