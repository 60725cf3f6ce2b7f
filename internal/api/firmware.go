package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/firmware"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol/module"
)

// Firmware over the air (docs/ota.md): the flash branch of PUT
// /v1/devices/{id} and the product firmware API.

// FirmwareUpdater starts and plans firmware updates; *firmware.Service is
// one. Its Flash errors match firmware.ErrInProgress, firmware.ErrRefused,
// bus.ErrDeviceOffline and bus.ErrTimeout with errors.Is.
type FirmwareUpdater interface {
	// Flash starts an update of the device with the stored binary hash
	// (product version version, 0 for none) and returns once the device
	// accepted it.
	Flash(ctx context.Context, deviceID string, productID int64, hash string, version int) error
	// ProductChanged queues the product's devices that should run another
	// version, and returns how many.
	ProductChanged(ctx context.Context, productID int64) (int, error)
	// DeviceChanged queues one device if it should run another version.
	DeviceChanged(ctx context.Context, deviceID string) error
}

// DefaultMaxFirmwareBytes bounds an uploaded binary (Config.MaxFirmwareBytes).
const DefaultMaxFirmwareBytes = 4 << 20

// firmwareBodySlack is what a multipart body may carry beyond the binary:
// the part headers and the other fields.
const firmwareBodySlack = 64 << 10

// Product firmware API-user scopes (Particle's names).
const (
	scopeFirmwareList    = "firmware:list"
	scopeFirmwareGet     = "firmware:get"
	scopeFirmwareCreate  = "firmware:create"
	scopeFirmwareUpdate  = "firmware:update"
	scopeFirmwareRelease = "firmware:release"
	scopeFirmwareRemove  = "firmware:remove"
	scopeFirmwareBinary  = "firmware.binary:get"
)

// Firmware failures.
var (
	errNoFirmwareFile    = errorf(http.StatusBadRequest, "Send the firmware binary as the multipart file \"file\": Wick does not compile source code")
	errFirmwareTooBig    = errorf(http.StatusRequestEntityTooLarge, "Firmware binary too large")
	errUpdateInProgress  = errorf(http.StatusConflict, "An update of the device is in progress")
	errUpdateRefused     = errorf(http.StatusBadRequest, "The device refused the update")
	errFirmwareVersion   = errorf(http.StatusBadRequest, "version must be a whole number from 1 to 65534")
	errFirmwareTitle     = errorf(http.StatusBadRequest, "title is required")
	errFirmwareNotFound  = errorf(http.StatusNotFound, "Firmware version not found")
	errFirmwareExists    = errorf(http.StatusBadRequest, "This version of the product firmware already exists")
	errFirmwareReleased  = errorf(http.StatusBadRequest, "The product default firmware cannot be deleted: release another version first")
	errFirmwareGroups    = errorf(http.StatusBadRequest, "Device groups are not supported: release to the product default")
	errFirmwareNotHosted = errorf(http.StatusBadRequest, "Firmware updates are not enabled on this server")
)

// firmwareBodyLimit is the body limit of the routes that take a binary.
func (s *server) firmwareBodyLimit() int64 {
	return s.cfg.MaxFirmwareBytes + firmwareBodySlack
}

// uploadedBinary reads the multipart file "file" (particle-api-js names
// the first file so) and returns its bytes and file name.
func (s *server) uploadedBinary(rq *request) ([]byte, string, error) {
	if rq.form == nil || len(rq.form.File["file"]) == 0 {
		return nil, "", errNoFirmwareFile
	}
	fh := rq.form.File["file"][0]
	if fh.Size > s.cfg.MaxFirmwareBytes {
		return nil, "", errFirmwareTooBig
	}
	f, err := fh.Open()
	if err != nil {
		return nil, "", fmt.Errorf("api: open uploaded firmware: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, s.cfg.MaxFirmwareBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("api: read uploaded firmware: %w", err)
	}
	if int64(len(b)) > s.cfg.MaxFirmwareBytes {
		return nil, "", errFirmwareTooBig
	}
	return b, fh.Filename, nil
}

// badBinary renders a module validation failure as a 400.
func badBinary(err error) error {
	return &Error{Status: http.StatusBadRequest, Message: "Invalid firmware binary: " + strings.TrimPrefix(err.Error(), "module: "), Cause: err}
}

// flashDevice is the flash branch of PUT /v1/devices/{id} and PUT
// /v1/products/{p}/devices/{id}: validate the uploaded binary for device
// d, store it by hash and start the update. It answers
// {"id","status":"Update started"} once the device accepted it.
func (s *server) flashDevice(rq *request, d *store.Device) error {
	if s.firmware == nil {
		return errFlashNotHere
	}
	bin, _, err := s.uploadedBinary(rq)
	if err != nil {
		return err
	}
	info, err := module.Parse(bin)
	if err != nil {
		return badBinary(err)
	}
	if err := info.CheckTarget(module.Target{PlatformID: d.PlatformID, SystemModuleVersion: d.SystemModuleVersion}); err != nil {
		return badBinary(err)
	}
	// Only a device a gateway holds takes an update (a Gen 3 device up on a
	// saved session is woken by calls, not by a flash).
	if s.devices == nil || !d.Online {
		return errDeviceOffline
	}
	hash, err := s.store.PutFirmwareBinary(rq.ctx, bin)
	if err != nil {
		return fmt.Errorf("api: store firmware: %w", err)
	}
	version := 0
	if info.IsProduct() && d.ProductID != 0 && int64(info.ProductID) == d.ProductID {
		version = int(info.ProductVersion)
	}
	if err := s.firmware.Flash(rq.ctx, d.ID, d.ProductID, hash, version); err != nil {
		return flashError(err)
	}
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "firmware update started", slog.String("device", d.ID),
		slog.String("hash", hash), slog.Int("bytes", len(bin)), slog.String("module", info.Function.String()))
	return writeJSON(rq.w, http.StatusOK, map[string]any{"id": d.ID, "status": "Update started", "ok": true})
}

// flashError maps a failed start of an update to its answer.
func flashError(err error) error {
	switch {
	case errors.Is(err, firmware.ErrInProgress):
		return errUpdateInProgress
	case errors.Is(err, firmware.ErrRefused):
		return errUpdateRefused
	case errors.Is(err, bus.ErrDeviceOffline), errors.Is(err, bus.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return deviceCallError(err, errUpdateRefused, errUpdateRefused)
	}
	return &Error{Status: http.StatusBadRequest, Message: "The update could not start", Cause: err}
}

// firmwareJSON is one product firmware version as the API shows it
// (particle-api-js ProductFirmwareInfo plus Particle's other fields).
type firmwareJSON struct {
	ID             string        `json:"_id"`
	Version        int           `json:"version"`
	Title          string        `json:"title"`
	Description    string        `json:"description"`
	Name           string        `json:"name"`
	Size           int           `json:"size"`
	ProductID      int64         `json:"product_id"`
	PlatformID     int           `json:"platform_id"`
	Current        bool          `json:"current"`
	ProductDefault bool          `json:"product_default"`
	Groups         []string      `json:"groups"`
	DeviceCount    int           `json:"device_count"`
	UploadedAt     string        `json:"uploaded_at"`
	UploadedOn     string        `json:"uploaded_on"`
	UploadedBy     *firmwareUser `json:"uploaded_by"`
	ReleasedAt     *string       `json:"released_at"`
	ReleasedBy     *firmwareUser `json:"released_by"`
	SHA256         string        `json:"sha256"`
}

// firmwareUser names who uploaded or released a version.
type firmwareUser struct {
	Username string `json:"username"`
}

func optUser(name string) *firmwareUser {
	if name == "" {
		return nil
	}
	return &firmwareUser{Username: name}
}

// firmwareView renders f; counts maps product versions to how many of the
// product's devices run them.
func firmwareView(f *store.ProductFirmware, counts map[int]int) firmwareJSON {
	return firmwareJSON{
		ID:             strconv.FormatInt(f.ProductID, 10) + "-" + strconv.Itoa(f.Version),
		Version:        f.Version,
		Title:          f.Title,
		Description:    f.Description,
		Name:           f.FileName,
		Size:           f.Size,
		ProductID:      f.ProductID,
		PlatformID:     f.PlatformID,
		Current:        f.ProductDefault,
		ProductDefault: f.ProductDefault,
		Groups:         []string{},
		DeviceCount:    counts[f.Version],
		UploadedAt:     isoTime(f.CreatedAt),
		UploadedOn:     isoTime(f.CreatedAt),
		UploadedBy:     optUser(f.UploadedBy),
		ReleasedAt:     isoTimePtr(f.ReleasedAt),
		ReleasedBy:     optUser(f.ReleasedBy),
		SHA256:         f.Hash,
	}
}

// versionCounts counts the product's devices by the firmware version they
// report.
func (s *server) versionCounts(ctx context.Context, productID int64) (map[int]int, error) {
	devs, _, err := s.store.DevicesByProduct(ctx, productID, store.DeviceFilter{})
	if err != nil {
		return nil, fmt.Errorf("api: devices of product %d: %w", productID, err)
	}
	counts := make(map[int]int)
	for i := range devs {
		counts[devs[i].ProductVersion]++
	}
	return counts, nil
}

// actingUsername is the username recorded as uploader or releaser: the
// user's, or "" for a product token or API user.
func (s *server) actingUsername(rq *request) string {
	if u, err := s.currentUser(rq); err == nil && u != nil {
		return u.Username
	}
	return ""
}

// firmwareVersionParam parses a version from the path or a field.
func firmwareVersionParam(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n >= module.NoProduct {
		return 0, errFirmwareVersion
	}
	return n, nil
}

// productFirmware loads the version named by the path.
func (s *server) productFirmware(rq *request) (*store.ProductFirmware, error) {
	v, err := firmwareVersionParam(rq.r.PathValue("version"))
	if err != nil {
		return nil, errFirmwareNotFound
	}
	f, err := s.store.ProductFirmware(rq.ctx, rq.product.ID, v)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errFirmwareNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("api: product firmware: %w", err)
	}
	return f, nil
}

// handleListProductFirmware is GET /v1/products/{p}/firmware: every
// version, newest first, as a bare array.
func (s *server) handleListProductFirmware(rq *request) error {
	list, err := s.store.ProductFirmwares(rq.ctx, rq.product.ID)
	if err != nil {
		return fmt.Errorf("api: list product firmware: %w", err)
	}
	counts, err := s.versionCounts(rq.ctx, rq.product.ID)
	if err != nil {
		return err
	}
	out := make([]firmwareJSON, 0, len(list))
	for i := range list {
		out = append(out, firmwareView(&list[i], counts))
	}
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleUploadProductFirmware is POST /v1/products/{p}/firmware: multipart
// "file" with version, title and description. The binary must be a user
// part for the product's platform whose embedded product ID and version
// are this product and this version. 201 with the new version.
func (s *server) handleUploadProductFirmware(rq *request) error {
	p := rq.params
	version, err := firmwareVersionParam(p.str("version"))
	if err != nil {
		return err
	}
	title := p.str("title")
	if title == "" {
		return errFirmwareTitle
	}
	bin, name, err := s.uploadedBinary(rq)
	if err != nil {
		return err
	}
	info, err := module.Parse(bin)
	if err != nil {
		return badBinary(err)
	}
	if err := info.CheckProduct(rq.product.ID, version); err != nil {
		return badBinary(err)
	}
	if rq.product.PlatformID != 0 && int(info.PlatformID) != rq.product.PlatformID {
		return badBinary(fmt.Errorf("%w: the binary is for platform %d, the product is platform %d",
			module.ErrPlatform, info.PlatformID, rq.product.PlatformID))
	}
	hash, err := s.store.PutFirmwareBinary(rq.ctx, bin)
	if err != nil {
		return fmt.Errorf("api: store firmware: %w", err)
	}
	if name == "" {
		name = "firmware.bin"
	}
	f := &store.ProductFirmware{
		ProductID: rq.product.ID, Version: version, Title: title, Description: p.str("description"),
		FileName: name, Hash: hash, Size: len(bin), PlatformID: int(info.PlatformID),
		UploadedBy: s.actingUsername(rq), CreatedAt: rq.now,
	}
	err = s.store.CreateProductFirmware(rq.ctx, f)
	if errors.Is(err, store.ErrConflict) {
		return errFirmwareExists
	}
	if err != nil {
		return fmt.Errorf("api: create product firmware: %w", err)
	}
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "product firmware uploaded", slog.Int64("product", f.ProductID),
		slog.Int("version", version), slog.String("hash", hash))
	return writeJSON(rq.w, http.StatusCreated, firmwareView(f, nil))
}

// handleGetProductFirmware is GET /v1/products/{p}/firmware/{version}.
func (s *server) handleGetProductFirmware(rq *request) error {
	f, err := s.productFirmware(rq)
	if err != nil {
		return err
	}
	counts, err := s.versionCounts(rq.ctx, rq.product.ID)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, firmwareView(f, counts))
}

// handleUpdateProductFirmware is PUT /v1/products/{p}/firmware/{version}:
// title and description.
func (s *server) handleUpdateProductFirmware(rq *request) error {
	f, err := s.productFirmware(rq)
	if err != nil {
		return err
	}
	p := rq.params
	if !p.has("title") && !p.has("description") {
		return errNothingToDo
	}
	if p.has("title") {
		if f.Title = p.str("title"); f.Title == "" {
			return errFirmwareTitle
		}
	}
	if p.has("description") {
		f.Description = p.str("description")
	}
	if err := s.store.UpdateProductFirmware(rq.ctx, f); err != nil {
		return fmt.Errorf("api: update product firmware: %w", err)
	}
	counts, err := s.versionCounts(rq.ctx, rq.product.ID)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, firmwareView(f, counts))
}

// handleDownloadProductFirmware is GET
// /v1/products/{p}/firmware/{version}/binary: the binary itself.
func (s *server) handleDownloadProductFirmware(rq *request) error {
	f, err := s.productFirmware(rq)
	if err != nil {
		return err
	}
	bin, err := s.store.FirmwareBinary(rq.ctx, f.Hash)
	if err != nil {
		return fmt.Errorf("api: firmware binary: %w", err)
	}
	h := rq.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(bin)))
	h.Set("Content-Disposition", "attachment; filename="+strconv.Quote(f.FileName))
	rq.w.WriteHeader(http.StatusOK)
	_, err = rq.w.Write(bin)
	return err
}

// handleDeleteProductFirmware is DELETE
// /v1/products/{p}/firmware/{version}; the product default cannot go.
func (s *server) handleDeleteProductFirmware(rq *request) error {
	f, err := s.productFirmware(rq)
	if err != nil {
		return err
	}
	if f.ProductDefault {
		return errFirmwareReleased
	}
	if err := s.store.DeleteProductFirmware(rq.ctx, f.ProductID, f.Version); err != nil {
		return fmt.Errorf("api: delete product firmware: %w", err)
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// handleReleaseProductFirmware is PUT /v1/products/{p}/firmware/release
// with version and product_default (absent means true; false withdraws
// the release when it is this version). Device groups are refused. The
// product's online devices that should now run another version are queued
// for an update at the configured rate; the answer is the version with
// "ok":true and "devices_queued".
func (s *server) handleReleaseProductFirmware(rq *request) error {
	p := rq.params
	version, err := firmwareVersionParam(p.str("version"))
	if err != nil {
		return err
	}
	if len(p.list("groups")) > 0 {
		return errFirmwareGroups
	}
	asDefault := true
	if p.has("product_default") && p["product_default"] != nil {
		if asDefault, err = boolParam(p, "product_default"); err != nil {
			return err
		}
	}
	f, err := s.store.ProductFirmware(rq.ctx, rq.product.ID, version)
	if errors.Is(err, store.ErrNotFound) {
		return errFirmwareNotFound
	}
	if err != nil {
		return fmt.Errorf("api: product firmware: %w", err)
	}
	switch {
	case asDefault:
		if f, err = s.store.ReleaseProductFirmware(rq.ctx, rq.product.ID, version, s.actingUsername(rq), rq.now); err != nil {
			return fmt.Errorf("api: release product firmware: %w", err)
		}
	case f.ProductDefault:
		if err := s.store.UnreleaseProductFirmware(rq.ctx, rq.product.ID); err != nil {
			return fmt.Errorf("api: withdraw product firmware release: %w", err)
		}
		f.ProductDefault = false
	}
	queued := 0
	if s.firmware != nil && asDefault {
		if queued, err = s.firmware.ProductChanged(rq.ctx, rq.product.ID); err != nil {
			return fmt.Errorf("api: queue updates: %w", err)
		}
	}
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "product firmware released", slog.Int64("product", rq.product.ID),
		slog.Int("version", version), slog.Bool("product_default", asDefault), slog.Int("devices_queued", queued))
	counts, err := s.versionCounts(rq.ctx, rq.product.ID)
	if err != nil {
		return err
	}
	out := firmwareView(f, counts)
	return writeJSON(rq.w, http.StatusOK, struct {
		OK bool `json:"ok"`
		firmwareJSON
		DevicesQueued int `json:"devices_queued"`
	}{true, out, queued})
}

// firmwareLock parses desired_firmware_version of a product device
// update: a version of the product's firmware (which must exist) locks
// the device to it, null or "" unlocks it (nil).
func (s *server) firmwareLock(rq *request) (*int, error) {
	raw := rq.params["desired_firmware_version"]
	if raw == nil || scalarString(raw) == "" {
		return nil, nil
	}
	v, err := firmwareVersionParam(scalarString(raw))
	if err != nil {
		return nil, err
	}
	if _, err := s.store.ProductFirmware(rq.ctx, rq.product.ID, v); errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusBadRequest, "Firmware version "+strconv.Itoa(v)+" does not exist in this product")
	} else if err != nil {
		return nil, fmt.Errorf("api: product firmware: %w", err)
	}
	return &v, nil
}

// firmwareChanged asks the updater to re-check a product device after its
// lock or development flag changed.
func (s *server) firmwareChanged(rq *request, deviceID string) {
	if s.firmware == nil {
		return
	}
	if err := s.firmware.DeviceChanged(rq.ctx, deviceID); err != nil {
		s.log.LogAttrs(rq.ctx, slog.LevelWarn, "api: queue firmware update", slog.String("device", deviceID), slog.Any("err", err))
	}
}

// withFirmware fills the firmware fields of a product device's object:
// desired_firmware_version (its lock) and
// targeted_firmware_release_version (what it should run: the lock, else
// the product default). Both stay null when none applies.
func (s *server) withFirmware(ctx context.Context, v deviceJSON, d *store.Device) (deviceJSON, error) {
	if v.productDeviceJSON == nil {
		return v, nil
	}
	df, err := s.store.DeviceFirmware(ctx, d.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return v, fmt.Errorf("api: device firmware: %w", err)
	}
	if df != nil && df.DesiredVersion != nil && df.ProductID == d.ProductID {
		locked := *df.DesiredVersion
		v.DesiredFirmwareVersion, v.TargetedFirmwareReleaseVersion = &locked, &locked
		return v, nil
	}
	f, err := s.store.ProductDefaultFirmware(ctx, d.ProductID)
	if errors.Is(err, store.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("api: product default firmware: %w", err)
	}
	target := f.Version
	v.TargetedFirmwareReleaseVersion = &target
	return v, nil
}
