package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Claim codes (docs/particle-api.md#claim-codes).
const (
	// claimCodeLifetime is how long a claim code waits for its device.
	claimCodeLifetime = 24 * time.Hour
	// claimCodeLen is the length of a Wi-Fi claim code: the device keeps
	// at most 63 characters.
	claimCodeLen = 63
)

// Claiming failures. errBelongsToSomeoneElse carries the sentence that
// particle-cli searches for to offer a transfer.
var (
	errBelongsToSomeoneElse = errorList(http.StatusForbidden,
		"That belongs to someone else. To request a transfer add ?request_transfer=true to the URL.")
	errDeviceNotFound   = errorf(http.StatusNotFound, "device not found")
	errClaimIDMissing   = errorf(http.StatusBadRequest, "id is required: the ID of the device to claim")
	errProvisionByClaim = errorf(http.StatusBadRequest,
		"Creating device IDs is not supported: send id, the ID of an existing device")
	errCustomerForeignProduct = &Error{Status: http.StatusForbidden, Message: "Permission Denied",
		Info: "A customer can claim only devices of its own product"}
	errCellularCode = errorf(http.StatusBadRequest,
		"iccid and imei must be 1 to 63 printable characters without spaces")
	// errNoFreeName: every generated name tried was taken (docs/api.md,
	// Device names); it takes thousands of devices of one owner.
	errNoFreeName = errorf(http.StatusConflict,
		"No free name for the device among your devices: rename some of them and claim again")
)

// newClaimCode returns a random Wi-Fi claim code: 63 characters of the
// standard base64 alphabet (A–Z, a–z, 0–9, + and /), 378 random bits.
func newClaimCode() (string, error) {
	b := make([]byte, 48) // 64 base64 characters
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("api: claim code: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b)[:claimCodeLen], nil
}

// cellularCode returns the claim code a cellular device reports: its ICCID,
// or its IMEI when no ICCID is given; "" when neither is.
func cellularCode(p params) (string, error) {
	code := strings.TrimSpace(p.str("iccid"))
	if code == "" {
		code = strings.TrimSpace(p.str("imei"))
	}
	if code == "" {
		return "", nil
	}
	if len(code) > claimCodeLen {
		return "", errCellularCode
	}
	for i := 0; i < len(code); i++ {
		if code[i] <= ' ' || code[i] > '~' {
			return "", errCellularCode
		}
	}
	return code, nil
}

// handleCreateClaimCode is POST /v1/device_claims and POST
// /v1/products/{p}/device_claims (docs/particle-api.md#claim-codes). The code
// claims the device that reports it to the caller: a user, or a customer (whose
// devices live in its product). On the product route a user must be on the team
// (the device also joins the product), a customer must belong to the product,
// and a product token of the product creates a code that puts the device in the
// product without an owner. Only the code's hash is stored, with a 24-hour
// expiry; the gateway takes it when a device reports the code.
//
// The body may carry iccid (or imei): a cellular device reports its ICCID
// as its claim code, so that value is the code. activation_code is
// ignored. The answer lists the device IDs the caller already owns.
func (s *server) handleCreateClaimCode(rq *request) error {
	p := rq.principal
	cc := store.ClaimCode{CreatedAt: rq.now, ExpiresAt: rq.now.Add(claimCodeLifetime)}
	var prod *store.Product
	if rq.r.PathValue("p") != "" {
		var err error
		if prod, err = s.productFromPath(rq); err != nil {
			return err
		}
		cc.ProductID = prod.ID
	}
	switch p.Kind {
	case store.KindUser:
		if prod != nil {
			if err := s.checkTeam(rq, prod); err != nil {
				return err
			}
		}
		cc.UserID = p.UserID
	case store.KindCustomer:
		if prod != nil && prod.ID != p.ProductID {
			return errForbidden
		}
		cc.CustomerID, cc.ProductID = p.CustomerID, p.ProductID
	case store.KindProduct:
		if prod == nil || prod.ID != p.ProductID {
			return errForbidden
		}
	default:
		return errForbidden
	}

	code, err := cellularCode(rq.params)
	if err != nil {
		return err
	}
	cellular := code != ""
	if !cellular {
		if code, err = newClaimCode(); err != nil {
			return err
		}
	}
	cc.Hash = auth.HashToken(code)
	err = s.store.CreateClaimCode(rq.ctx, &cc)
	if errors.Is(err, store.ErrConflict) && cellular {
		// A new code for the same SIM replaces the pending one: the
		// latest request wins.
		if _, terr := s.store.TakeClaimCode(rq.ctx, cc.Hash, rq.now); terr != nil && !errors.Is(terr, store.ErrNotFound) {
			return fmt.Errorf("api: replace claim code: %w", terr)
		}
		err = s.store.CreateClaimCode(rq.ctx, &cc)
	}
	if err != nil {
		return fmt.Errorf("api: create claim code: %w", err)
	}

	ids, err := s.ownedDeviceIDs(rq)
	if err != nil {
		return err
	}
	s.log.LogAttrs(rq.ctx, slog.LevelDebug, "claim code created",
		slog.String("user", cc.UserID), slog.String("customer", cc.CustomerID),
		slog.Int64("product", cc.ProductID), slog.Bool("cellular", cellular))
	return writeJSON(rq.w, http.StatusOK, map[string]any{"claim_code": code, "device_ids": ids})
}

// ownedDeviceIDs lists the IDs of the devices the caller owns: a user's
// or a customer's; none for a product token.
func (s *server) ownedDeviceIDs(rq *request) ([]string, error) {
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
	}
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(list))
	for i := range list {
		ids = append(ids, list[i].ID)
	}
	return ids, nil
}

// ownsDevice reports whether the principal (a user or a customer) owns d.
func ownsDevice(p *auth.Principal, d *store.Device) bool {
	switch p.Kind {
	case store.KindUser:
		return d.OwnerID != "" && d.OwnerID == p.UserID
	case store.KindCustomer:
		return d.CustomerID != "" && d.CustomerID == p.CustomerID
	}
	return false
}

// handleClaimDevice is POST /v1/devices {id, request_transfer}
// (docs/particle-api.md#claiming-a-device-by-id): claim a device by ID for the
// calling user or customer.
//
//   - A device that is already the caller's answers as a fresh claim.
//   - A device with another owner, or in a product whose team the calling
//     user is not on, is 403 with the list body particle-cli looks for;
//     with request_transfer=true it is 200 {"ok":true,"transfer_id"}
//     instead. Wick records no transfer: the ID only lets a client show
//     that the request was taken, and the log notes it.
//   - A customer may claim only unowned devices of its own product.
//   - The device need not be online (Particle requires it; a self-hosted
//     cloud has no reason to).
//   - Unknown or malformed IDs are 404 {"ok":false,"error":"device not
//     found"}.
//
// After a claim the device's session, if any, re-reads its owner.
func (s *server) handleClaimDevice(rq *request) error {
	p := rq.principal
	raw := strings.TrimSpace(rq.params.str("id"))
	if raw == "" {
		if rq.params.has("product_id") {
			return errProvisionByClaim
		}
		return errClaimIDMissing
	}
	id, err := protocol.ParseDeviceID(raw)
	if err != nil {
		return errDeviceNotFound
	}
	d, err := s.store.DeviceByID(rq.ctx, id.String())
	if errors.Is(err, store.ErrNotFound) {
		return errDeviceNotFound
	}
	if err != nil {
		return err
	}
	if !ownsDevice(p, d) {
		foreign, err := s.claimForeign(rq, d)
		if err != nil {
			return err
		}
		if foreign {
			if rq.params.isTrue("request_transfer") {
				return s.requestTransfer(rq, d)
			}
			return errBelongsToSomeoneElse
		}
		userID, customerID := p.UserID, ""
		if p.Kind == store.KindCustomer {
			userID, customerID = "", p.CustomerID
		}
		if d, err = s.store.ClaimDevice(rq.ctx, d.ID, userID, customerID); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errNoFreeName
			}
			return fmt.Errorf("api: claim device: %w", err)
		}
		s.reloadDevice(rq, d.ID)
		s.log.LogAttrs(rq.ctx, slog.LevelInfo, "device claimed by ID",
			slog.String("device", d.ID), slog.String("user", userID), slog.String("customer", customerID))
	}
	owner := p.UserID
	if p.Kind == store.KindCustomer {
		owner = p.CustomerID
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{
		"ok": true, "id": d.ID, "user_id": owner, "connected": d.Online,
	})
}

// claimForeign reports whether d, which the caller does not own, belongs
// to someone else as far as claiming goes: another owner, or a product the
// calling user is not a team member of. A customer claiming a device
// outside its product is an error of its own.
func (s *server) claimForeign(rq *request, d *store.Device) (bool, error) {
	p := rq.principal
	if d.OwnerID != "" || d.CustomerID != "" {
		return true, nil
	}
	if p.Kind == store.KindCustomer {
		if d.ProductID != p.ProductID {
			return false, errCustomerForeignProduct
		}
		return false, nil
	}
	if d.ProductID == 0 {
		return false, nil
	}
	prod, err := s.store.ProductByID(rq.ctx, d.ProductID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // the product is gone: the device is free
	}
	if err != nil {
		return false, err
	}
	if err := s.checkTeam(rq, prod); err != nil {
		if errors.Is(err, errForbidden) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}

// requestTransfer answers a transfer request for a device that belongs to
// someone else. Nothing is stored: the ID is random, and the request is
// logged for the operator.
func (s *server) requestTransfer(rq *request, d *store.Device) error {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("api: transfer id: %w", err)
	}
	tid := hex.EncodeToString(b)
	p := rq.principal
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "device transfer requested",
		slog.String("device", d.ID), slog.String("transfer_id", tid),
		slog.String("by_user", p.UserID), slog.String("by_customer", p.CustomerID))
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "transfer_id": tid})
}

// reloadDevice asks the device's session, wherever it is, to re-read its
// owner and product after the API changed them. A failure is logged: the
// store is already right, and the device's next connection reads it.
func (s *server) reloadDevice(rq *request, id string) {
	if s.devices == nil {
		return
	}
	if err := s.devices.Reload(rq.ctx, id); err != nil {
		s.log.LogAttrs(rq.ctx, slog.LevelWarn, "api: device reload failed",
			slog.String("device", id), slog.Any("err", err))
	}
}
