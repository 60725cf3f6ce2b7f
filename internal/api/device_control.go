package api

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Device call failures (docs/particle-api.md#function-and-variable-errors).
var (
	errDeviceOffline   = errorf(http.StatusBadRequest, "Device is offline")
	errDeviceTimeout   = errorf(http.StatusRequestTimeout, "Timed out.")
	errArgTooLong      = errorf(http.StatusBadRequest, "Function argument too long")
	errVariableRefused = errorf(http.StatusBadRequest, "The device refused to read the variable")
	errDeviceBusy      = &deviceBusyError{retryAfter: deviceBusyRetryAfter}
)

// deviceBusyRetryAfter is the Retry-After of a 429 for a device with too
// many requests in flight: calls to it end within the gateway's call
// timeout, so a slot is free again soon.
const deviceBusyRetryAfter = time.Second

// deviceBusyError is the 429 answer for a device that has the most
// requests in flight it may have (docs/security.md, "Busy devices"):
// {"ok":false,"error":"Device is busy: too many requests in flight"} with
// Retry-After. It is logged at Debug only; the gateway logs the device at
// Info, at most once a minute.
type deviceBusyError struct {
	retryAfter time.Duration
}

func (e *deviceBusyError) Error() string { return "api: device busy" }

// Function argument limits of older Device OS releases
// (docs/particle-api.md#function-and-variable-limits); current firmware
// takes protocol.MaxFunctionArgLen (1024) bytes.
const (
	argLimitPre080 = 63  // before 0.8.0
	argLimitPre300 = 622 // 0.8.0 to 2.x
	argLimitGen2   = 864 // 3.x and later on Gen 2 platforms
)

// gen2Platforms are the Gen 2 platform IDs: Photon, P1, Electron.
var gen2Platforms = map[int]bool{6: true, 8: true, 10: true}

// functionArgLimit is the longest argument, in bytes, that d's Device OS
// accepts: from the release it described (or its Hello's system module
// version), else the current limit.
func functionArgLimit(d *store.Device) int {
	v := d.SystemVersion
	if v == "" {
		v = deviceOSVersion(d.SystemModuleVersion)
	}
	major, minor, ok := majorMinor(v)
	switch {
	case !ok:
		return protocol.MaxFunctionArgLen
	case major == 0 && minor < 8:
		return argLimitPre080
	case major < 3:
		return argLimitPre300
	case gen2Platforms[d.PlatformID]:
		return argLimitGen2
	}
	return protocol.MaxFunctionArgLen
}

// majorMinor parses the first two numbers of a release name such as
// "3.3.1" or "0.8.0-rc.1".
func majorMinor(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(parts[0])
	minor, err2 = strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

// pathDevice resolves the {id} of a device route. On a product route
// (/v1/products/{p}/devices/{id}..., whose team policy set rq.product) it
// is a device ID of a device in that product; elsewhere a device ID or
// name of one of the caller's devices (callerDevice).
func (s *server) pathDevice(rq *request) (*store.Device, error) {
	if rq.product != nil {
		return s.productDevice(rq, rq.r.PathValue("id"))
	}
	return s.callerDevice(rq, rq.r.PathValue("id"))
}

// productDevice returns the device with that ID if it is in the route's
// product, else 404 {"ok":false,"error":"device not found"}. Product routes
// take IDs only (docs/particle-api.md#device-id-or-name): names are unique per
// owner, not per product.
func (s *server) productDevice(rq *request, idParam string) (*store.Device, error) {
	id, err := protocol.ParseDeviceID(idParam)
	if err != nil {
		return nil, errDeviceNotFound
	}
	d, err := s.store.DeviceByID(rq.ctx, id.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.ProductID != rq.product.ID) {
		return nil, errDeviceNotFound
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// deviceCallError maps a DeviceCaller failure to the answer of
// docs/particle-api.md#function-and-variable-errors: offline 400, timeout 408,
// unknown name the given 404, refused the given 400, too many requests in
// flight 429 with Retry-After. Anything else stays an internal error.
func deviceCallError(err, notFound, refused error) error {
	switch {
	case errors.Is(err, bus.ErrDeviceOffline):
		return errDeviceOffline
	case errors.Is(err, bus.ErrDeviceBusy):
		return errDeviceBusy
	case errors.Is(err, bus.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return errDeviceTimeout
	case errors.Is(err, bus.ErrNoSuchName):
		return notFound
	case errors.Is(err, bus.ErrRefused):
		var e *Error
		if errors.As(refused, &e) {
			c := *e
			c.Cause = err
			return &c
		}
		return refused
	}
	return err
}

// savedSessionWindow is how recently an offline Gen 3 device must have been
// heard for a call to try its saved DTLS session: the longest default
// silence of a Gen 3 device (cellular, 46 min 45 s) rounded up.
const savedSessionWindow = 47 * time.Minute

// reachable reports whether a call to d may be tried: there is a
// DeviceCaller to reach it, and the store says it is online, or it is a
// Gen 3 device heard within savedSessionWindow. Such a device may still be
// up on a session saved before a restart of the gateway (it does not notice
// a restart until its next datagram); the gateway tries that session once
// and remembers a miss for a minute
// (docs/device-protocol.md, "After a restart").
func (s *server) reachable(d *store.Device) bool {
	if s.devices == nil {
		return false
	}
	if d.Online {
		return true
	}
	return d.KeyAlgorithm == store.KeyECC && d.LastHeard != nil && time.Since(*d.LastHeard) < savedSessionWindow
}

// wantsRaw reports whether the caller asked for format=raw (query or
// body).
func wantsRaw(rq *request) bool {
	return strings.EqualFold(rq.params.str("format"), "raw")
}

// writeRaw sends a plain-text 200 body (?format=raw).
func writeRaw(w http.ResponseWriter, body string) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(body))
	return err
}

// handleCallFunction is POST /v1/devices/{id}/{name} and POST
// /v1/products/{p}/devices/{id}/{name} (docs/particle-api.md#device-endpoints).
// The argument is arg (docs, CLI-legacy) or args (particle-api-js), "" when
// neither is sent. Checks come before the call: a function the device did not
// describe is 404, an argument longer than the device's Device OS accepts is
// 400, an offline device is 400. The answer is {"id","name","connected":true,
// "return_value"}, or with format=raw the bare number as text/plain.
func (s *server) handleCallFunction(rq *request) error {
	d, err := s.pathDevice(rq)
	if err != nil {
		return err
	}
	name := rq.r.PathValue("name")
	notFound := errorf(http.StatusNotFound, "Function "+name+" not found")
	if !slices.Contains(d.Functions, name) {
		return notFound
	}
	arg := rq.params.str("arg")
	if !rq.params.has("arg") {
		arg = rq.params.str("args")
	}
	if len(arg) > functionArgLimit(d) {
		return errArgTooLong
	}
	if !s.reachable(d) {
		return errDeviceOffline
	}
	v, err := s.devices.CallFunction(rq.ctx, d.ID, name, arg)
	if err != nil {
		return deviceCallError(err, notFound, errArgTooLong)
	}
	if wantsRaw(rq) {
		return writeRaw(rq.w, strconv.FormatInt(int64(v), 10))
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{
		"id": d.ID, "name": optString(d.Name), "connected": true, "return_value": v,
	})
}

// variableCoreInfo is the "coreInfo" object of a variable read.
type variableCoreInfo struct {
	Name            *string `json:"name"`
	DeviceID        string  `json:"deviceID"`
	Connected       bool    `json:"connected"`
	LastHandshakeAt *string `json:"last_handshake_at"`
	LastApp         *string `json:"last_app"` // null, as in the device object: Wick builds no apps
	LastHeard       *string `json:"last_heard"`
	ProductID       int64   `json:"product_id"`
}

// handleGetVariable is GET /v1/devices/{id}/{name} and GET
// /v1/products/{p}/devices/{id}/{name} (docs/particle-api.md#device-endpoints):
// {"name","result","coreInfo"} with result typed by the variable's type, or
// with format=raw the bare value as text/plain. A variable the device did not
// describe is 404 "Unknown Variable: <name>"; an offline device is 400. A
// double that is not a number (NaN, ±Inf) is null in JSON.
func (s *server) handleGetVariable(rq *request) error {
	d, err := s.pathDevice(rq)
	if err != nil {
		return err
	}
	name := rq.r.PathValue("name")
	notFound := errorf(http.StatusNotFound, "Unknown Variable: "+name)
	if _, known := d.Variables[name]; !known {
		return notFound
	}
	if !s.reachable(d) {
		return errDeviceOffline
	}
	v, err := s.devices.GetVariable(rq.ctx, d.ID, name)
	if err != nil {
		return deviceCallError(err, notFound, errVariableRefused)
	}
	if wantsRaw(rq) {
		return writeRaw(rq.w, rawValue(v))
	}
	if f, isFloat := v.(float64); isFloat && (math.IsNaN(f) || math.IsInf(f, 0)) {
		v = nil // JSON has no NaN or infinity
	}
	productID := d.ProductID
	if productID == 0 {
		productID = int64(d.PlatformID)
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{
		"name":   name,
		"result": v,
		"coreInfo": variableCoreInfo{
			Name: optString(d.Name), DeviceID: d.ID, Connected: true,
			LastHandshakeAt: isoTimePtr(d.LastHandshakeAt), LastHeard: isoTimePtr(d.LastHeard),
			ProductID: productID,
		},
	})
}

// rawValue formats a variable's value as format=raw sends it.
func rawValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case nil:
		return ""
	}
	return ""
}

// handlePing is PUT /v1/devices/{id}/ping and PUT
// /v1/products/{p}/devices/{id}/ping: {"online":bool,"ok":true}. A device
// the store has offline answers at once without a call; otherwise the
// device is pinged (within the gateway's call timeout) and any failure
// reads as offline.
func (s *server) handlePing(rq *request) error {
	d, err := s.pathDevice(rq)
	if err != nil {
		return err
	}
	online := false
	if s.reachable(d) {
		err := s.devices.Ping(rq.ctx, d.ID)
		// A device with too many calls in flight is busy, not gone: its
		// session is alive.
		online = err == nil || errors.Is(err, bus.ErrDeviceBusy)
		if err != nil && !errors.Is(err, bus.ErrDeviceOffline) && !errors.Is(err, bus.ErrTimeout) && !online {
			s.log.LogAttrs(rq.ctx, slog.LevelWarn, "api: ping failed", slog.String("device", d.ID), slog.Any("err", err))
		}
	}
	return writeJSON(rq.w, http.StatusOK, map[string]bool{"online": online, "ok": true})
}
