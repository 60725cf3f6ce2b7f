package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// deviceJSON is the device object of docs/particle-api.md#the-device-object,
// the one shape of a device in every device route: list and detail views, user
// and product routes. last_app is always null: Wick builds no apps (a
// variable's coreInfo says the same).
type deviceJSON struct {
	ID              string  `json:"id"`
	Name            *string `json:"name"`  // null when unnamed
	Owner           *string `json:"owner"` // username, or customer e-mail; null when unclaimed
	LastApp         *string `json:"last_app"`
	LastIPAddress   *string `json:"last_ip_address"`
	LastHeard       *string `json:"last_heard"`
	LastHandshakeAt *string `json:"last_handshake_at"`
	// ProductID is the product, or the platform for a device in none
	// (particle-cli derives the platform name from it).
	ProductID              int64             `json:"product_id"`
	PlatformID             int               `json:"platform_id"`
	Online                 bool              `json:"online"`
	Connected              bool              `json:"connected"` // deprecated alias of Online that CLI-legacy reads
	Cellular               bool              `json:"cellular"`
	Notes                  *string           `json:"notes"`
	Functions              []string          `json:"functions"` // [] when none
	Variables              map[string]string `json:"variables"` // {} when none
	Status                 string            `json:"status"`
	SystemFirmwareVersion  string            `json:"system_firmware_version,omitempty"`
	CurrentBuildTarget     string            `json:"current_build_target,omitempty"`
	FirmwareUpdatesEnabled bool              `json:"firmware_updates_enabled"`
	FirmwareUpdatesForced  bool              `json:"firmware_updates_forced"`
	// The product-only fields, flattened in when the device is in a
	// product.
	*productDeviceJSON
}

// productDeviceJSON holds the fields of docs/particle-api.md#the-device-object
// that only devices in a product have.
type productDeviceJSON struct {
	FirmwareProductID              int64    `json:"firmware_product_id"`
	FirmwareVersion                *int     `json:"firmware_version"`         // null when the device reports none
	DesiredFirmwareVersion         *int     `json:"desired_firmware_version"` // null: no firmware lock yet
	TargetedFirmwareReleaseVersion *int     `json:"targeted_firmware_release_version"`
	Groups                         []string `json:"groups"`
	Development                    bool     `json:"development"`
	Quarantined                    bool     `json:"quarantined"`
	Denied                         bool     `json:"denied"`
}

// deviceView renders d as the device object, owner being the name shown
// as its owner ("" for none). Timestamps are ISO-8601 with milliseconds;
// system_firmware_version is the Device OS release the device described,
// else the release of the system module version of its Hello (3302 is
// 3.3.1, from Device OS's own table), else absent.
func deviceView(d *store.Device, owner string) deviceJSON {
	v := deviceJSON{
		ID:                     d.ID,
		Name:                   optString(d.Name),
		Owner:                  optString(owner),
		LastIPAddress:          optString(d.LastIP),
		LastHeard:              isoTimePtr(d.LastHeard),
		LastHandshakeAt:        isoTimePtr(d.LastHandshakeAt),
		ProductID:              int64(d.PlatformID),
		PlatformID:             d.PlatformID,
		Online:                 d.Online,
		Connected:              d.Online,
		Notes:                  optString(d.Notes),
		Functions:              d.Functions,
		Variables:              d.Variables,
		Status:                 d.Status,
		SystemFirmwareVersion:  d.SystemVersion,
		FirmwareUpdatesEnabled: d.FirmwareUpdatesEnabled,
		FirmwareUpdatesForced:  d.FirmwareUpdatesForced,
	}
	if v.Functions == nil {
		v.Functions = []string{}
	}
	if v.Variables == nil {
		v.Variables = map[string]string{}
	}
	if v.Status == "" {
		v.Status = store.DeviceStatusNormal
	}
	if v.SystemFirmwareVersion == "" {
		v.SystemFirmwareVersion = deviceOSVersion(d.SystemModuleVersion)
	}
	v.CurrentBuildTarget = v.SystemFirmwareVersion
	if d.ProductID != 0 {
		v.ProductID = d.ProductID
		pv := &productDeviceJSON{
			FirmwareProductID: d.ProductID,
			Groups:            []string{},
			Development:       d.Development,
			Quarantined:       d.Quarantined,
			Denied:            d.Denied,
		}
		if d.ProductVersion != 0 {
			fv := d.ProductVersion
			pv.FirmwareVersion = &fv
		}
		v.productDeviceJSON = pv
	}
	return v
}

// optString returns nil (JSON null) for "" and &s otherwise.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deviceOwner returns the name shown as d's owner: its user's username or
// its customer's e-mail, "" when unclaimed. owners caches names under
// "u:"+user ID and "c:"+customer ID; an owner that vanished shows as "".
func (s *server) deviceOwner(rq *request, d *store.Device, owners map[string]string) (string, error) {
	var key string
	switch {
	case d.OwnerID != "":
		key = "u:" + d.OwnerID
	case d.CustomerID != "":
		key = "c:" + d.CustomerID
	default:
		return "", nil
	}
	if name, found := owners[key]; found {
		return name, nil
	}
	var name string
	if d.OwnerID != "" {
		u, err := s.store.UserByID(rq.ctx, d.OwnerID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		if u != nil {
			name = u.Username
		}
	} else {
		c, err := s.store.CustomerByID(rq.ctx, d.CustomerID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		if c != nil {
			name = c.Email
		}
	}
	owners[key] = name
	return name, nil
}

// callerOwners returns an owner-name cache holding the caller itself, so
// that rendering the caller's own devices reads no accounts.
func callerOwners(rq *request) map[string]string {
	p := rq.principal
	owners := map[string]string{}
	switch p.Kind {
	case store.KindUser:
		owners["u:"+p.UserID] = p.Username
	case store.KindCustomer:
		owners["c:"+p.CustomerID] = p.Username
	}
	return owners
}

// handleListDevices is GET /v1/devices (docs/particle-api.md#device-endpoints):
// a bare array of the devices the token's user or customer owns, most recently
// connected first, each the full device object with its functions and
// variables.
func (s *server) handleListDevices(rq *request) error {
	if ok, err := s.listCachedDevices(rq); ok {
		return err
	}
	return s.listDevicesUncached(rq)
}

// listDevicesUncached answers GET /v1/devices by reading and rendering
// every device, for stores without versioned lists (device_list.go).
func (s *server) listDevicesUncached(rq *request) error {
	p := rq.principal
	var (
		list []store.Device
		err  error
	)
	switch p.Kind {
	case store.KindUser:
		list, err = s.store.DevicesByOwner(rq.ctx, p.UserID)
	case store.KindCustomer:
		list, err = s.store.DevicesByCustomer(rq.ctx, p.CustomerID)
	default:
		return errForbidden
	}
	if err != nil {
		return err
	}
	owners := callerOwners(rq)
	out := make([]deviceJSON, 0, len(list))
	for i := range list {
		owner, err := s.deviceOwner(rq, &list[i], owners)
		if err != nil {
			return err
		}
		out = append(out, deviceView(&list[i], owner))
	}
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleGetDevice is GET /v1/devices/{id}
// (docs/particle-api.md#device-endpoints): one of the caller's devices, by ID
// or name. By ID it answers from the device cache (device_get.go).
func (s *server) handleGetDevice(rq *request) error {
	if ok, err := s.getCachedDevice(rq, rq.r.PathValue("id")); ok {
		return err
	}
	d, err := s.callerDevice(rq, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	owner, err := s.deviceOwner(rq, d, callerOwners(rq))
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, deviceView(d, owner))
}

// callerDevice resolves the {id} of a user-level device route
// (docs/particle-api.md#device-id-or-name): a device ID, in any case, of a
// device the caller owns, else the name, ignoring case, of one of the caller's
// devices. Users own the devices claimed to them, customers those claimed to
// them. Anything else, other people's devices included, is the 403 "I didn't
// recognize that device name or ID" error, so that a device's existence does
// not leak.
func (s *server) callerDevice(rq *request, idOrName string) (*store.Device, error) {
	p := rq.principal
	if id, err := protocol.ParseDeviceID(idOrName); err == nil {
		d, err := s.store.DeviceByID(rq.ctx, id.String())
		switch {
		case err == nil && ownsDevice(p, d):
			return d, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	var (
		d   *store.Device
		err error
	)
	switch p.Kind {
	case store.KindUser:
		d, err = s.store.DeviceByOwnerName(rq.ctx, p.UserID, idOrName)
	case store.KindCustomer:
		d, err = s.store.DeviceByCustomerName(rq.ctx, p.CustomerID, idOrName)
	default:
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.errUnknownDevice(rq)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// errUnknownDevice is the 403 of docs/particle-api.md#device-id-or-name for a
// device the caller cannot see, pointing at this API's device list.
func (s *server) errUnknownDevice(rq *request) error {
	return &Error{Status: http.StatusForbidden, Message: "Permission Denied",
		Info: "I didn't recognize that device name or ID, try opening " + s.devicesURL(rq.r)}
}

// devicesURL is the absolute URL of GET /v1/devices: under
// Config.PublicURL when that names a host and port, else under the
// request's Host (https when the request came over TLS, or through a
// trusted proxy that says so). Port 0 is a listen address too (the
// default PublicURL of `--http 127.0.0.1:0` is http://127.0.0.1:0).
func (s *server) devicesURL(r *http.Request) string {
	base := strings.TrimRight(s.cfg.PublicURL, "/")
	u, err := url.Parse(base)
	if base == "" || err != nil || u.Host == "" || unspecifiedHost(u.Hostname()) || u.Port() == "0" {
		scheme := "http"
		if r.TLS != nil || (s.cfg.TrustProxy && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")) {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/v1/devices"
}

// unspecifiedHost reports whether a listen-address host ("", 0.0.0.0,
// ::) leaked into a URL, where no client can use it.
func unspecifiedHost(h string) bool {
	if h == "" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsUnspecified()
}

// handleUnclaimDevice is DELETE /v1/devices/{id}
// (docs/particle-api.md#unclaiming-and-removing-devices): the calling user or
// customer gives up one of its devices, by ID or name. The device keeps its
// name, notes and product. Answer {"ok":true}.
func (s *server) handleUnclaimDevice(rq *request) error {
	d, err := s.callerDevice(rq, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.store.UnclaimDevice(rq.ctx, d.ID); err != nil {
		return fmt.Errorf("api: unclaim device: %w", err)
	}
	s.reloadDevice(rq, d.ID)
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "device unclaimed", slog.String("device", d.ID),
		slog.String("by_user", rq.principal.UserID), slog.String("by_customer", rq.principal.CustomerID))
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// Device name and notes limits, and names that cannot be used.
const (
	maxDeviceNameLen  = 63
	maxDeviceNotesLen = 10000
)

// Update failures (docs/particle-api.md#device-endpoints).
var (
	errFlashNotHere  = errorf(http.StatusBadRequest, "Flashing firmware over the API is not supported")
	errGroups        = errorf(http.StatusBadRequest, "Device groups are not supported")
	errNotesTooLong  = errorf(http.StatusBadRequest, "notes must be at most 10000 bytes")
	errSignalValue   = errorf(http.StatusBadRequest, "signal must be 1 or 0")
	errDeviceNameBad = errorf(http.StatusBadRequest,
		"name must be 1 to 63 characters: letters, digits, underscores and hyphens")
	errDeviceNameID       = errorf(http.StatusBadRequest, "name must not look like a device ID")
	errDeviceNameReserved = errorf(http.StatusBadRequest, "name \"events\" is reserved: /v1/devices/events is the event stream")
)

// checkDeviceName validates a new device name: 1–63 ASCII letters,
// digits, '_' or '-' (names travel unescaped in URL paths), not 24 hex
// characters (it would read as an ID) and not "events" (GET
// /v1/devices/events is the event stream, docs/particle-api.md#route-matching).
func checkDeviceName(name string) error {
	if name == "" || len(name) > maxDeviceNameLen {
		return errDeviceNameBad
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return errDeviceNameBad
		}
	}
	if _, err := protocol.ParseDeviceID(name); err == nil {
		return errDeviceNameID
	}
	if strings.EqualFold(name, "events") {
		return errDeviceNameReserved
	}
	return nil
}

// boolParam reads a boolean field of an update, 400 when it is not one.
func boolParam(p params, key string) (bool, error) {
	v, ok := p.boolean(key)
	if !ok {
		return false, errorf(http.StatusBadRequest, key+" must be true or false")
	}
	return v, nil
}

// handleUpdateDevice is PUT /v1/devices/{id} and PUT
// /v1/products/{p}/devices/{id} (docs/particle-api.md#device-endpoints): it
// applies every key present and merges their answers into one object.
//
//   - name → "name", "updated_at"; unique per owner, ignoring case (400
//     when another device of the owner has it).
//   - notes → "notes", "updated_at".
//   - signal ("1"/"0", 1/0, true/false) → "connected":true, "signaling";
//     the device must be online (400 "Device is offline").
//   - firmware_updates_forced → "firmware_updates_forced".
//   - product route only: development → "development", "updated_at";
//     desired_firmware_version N (a version of the product's firmware) or
//     null → "desired_firmware_version", "updated_at": locks or unlocks
//     the device (docs/ota.md); with flash true, or development back to
//     false, the device is re-checked for an update now;
//     groups → 400 unless empty.
//   - a multipart firmware file → the update is validated and started
//     (flashDevice, docs/ota.md); build_target_version alone → 400.
//   - nothing recognised → 400 "Nothing to do?".
//
// Everything is validated first; the signal is sent before anything is
// stored, so that an offline device leaves the request without effect.
func (s *server) handleUpdateDevice(rq *request) error {
	d, err := s.pathDevice(rq)
	if err != nil {
		return err
	}
	p := rq.params
	if (rq.form != nil && len(rq.form.File) > 0) || p.has("file") || p.has("build_target_version") || p.has("file_type") {
		return s.flashDevice(rq, d)
	}
	onProduct := rq.product != nil
	out := map[string]any{"id": d.ID}
	var stamped, stored bool // a change that moves updated_at; any change to store
	if p.has("name") {
		name := strings.TrimSpace(p.str("name"))
		if err := checkDeviceName(name); err != nil {
			return err
		}
		d.Name, out["name"], stamped = name, name, true
	}
	if p.has("notes") {
		notes := p.str("notes")
		if len(notes) > maxDeviceNotesLen {
			return errNotesTooLong
		}
		d.Notes, out["notes"], stamped = notes, notes, true
	}
	if p.has("firmware_updates_forced") {
		v, err := boolParam(p, "firmware_updates_forced")
		if err != nil {
			return err
		}
		d.FirmwareUpdatesForced, out["firmware_updates_forced"], stored = v, v, true
	}
	if onProduct && p.has("development") {
		v, err := boolParam(p, "development")
		if err != nil {
			return err
		}
		d.Development, out["development"], stamped = v, v, true
	}
	var lock *int
	lockSet := onProduct && p.has("desired_firmware_version")
	if lockSet {
		if lock, err = s.firmwareLock(rq); err != nil {
			return err
		}
		if lock != nil {
			out["desired_firmware_version"] = *lock
		} else {
			out["desired_firmware_version"] = nil
		}
		stamped = true
	}
	if onProduct && p.has("groups") && len(p.list("groups")) > 0 {
		return errGroups
	}
	signal, hasSignal := false, p.has("signal")
	if hasSignal {
		var ok bool
		if signal, ok = p.boolean("signal"); !ok {
			return errSignalValue
		}
	}
	if len(out) == 1 && !hasSignal && !(onProduct && p.has("groups")) {
		return errNothingToDo
	}

	if hasSignal {
		if !s.reachable(d) {
			return errDeviceOffline
		}
		if err := s.devices.Signal(rq.ctx, d.ID, signal); err != nil {
			return deviceCallError(err, errDeviceOffline, errorf(http.StatusBadRequest, "The device refused the signal"))
		}
		out["connected"], out["signaling"] = true, signal
	}
	if stamped || stored {
		d.UpdatedAt = rq.now
		err := s.store.UpdateDevice(rq.ctx, d)
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusBadRequest, "Another device of the same owner is already named "+d.Name)
		}
		if err != nil {
			return fmt.Errorf("api: update device: %w", err)
		}
		if stamped {
			out["updated_at"] = isoTime(rq.now)
		}
	}
	if lockSet {
		if err := s.store.SetDeviceFirmwareLock(rq.ctx, d.ID, rq.product.ID, lock); err != nil {
			return fmt.Errorf("api: lock device firmware: %w", err)
		}
	}
	// A new lock with flash, or a device leaving development, may need
	// the product firmware now (otherwise at its next connection).
	if lockSet && p.isTrue("flash") || onProduct && p.has("development") && !d.Development {
		s.firmwareChanged(rq, d.ID)
	}
	return writeJSON(rq.w, http.StatusOK, out)
}
