package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Device key sizes accepted by ParseDeviceKey.
const (
	deviceKeyBits    = protocol.DeviceKeyBits // RSA-1024, what Gen 2 devices generate
	deviceKeyBitsAlt = 2048                   // accepted too: some tools generate it
)

// DeviceKeyError reports a device public key that ParseDeviceKey refuses.
// Reason is a sentence for the person who sent the key.
type DeviceKeyError struct {
	Reason string
}

// Error returns the package-prefixed reason.
func (e *DeviceKeyError) Error() string { return "api: invalid device public key: " + e.Reason }

// ParseDeviceKey parses a device public key in any form that
// `particle keys send` and `wick device provision` supply
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key): PEM
// "PUBLIC KEY" (SPKI) or "RSA PUBLIC KEY" (PKCS#1), DER of either form, or
// that DER in base64. It accepts
// RSA keys of 1024 bits (Gen 2 devices) or 2048 bits and EC P-256 keys (Gen 3
// devices), and returns the algorithm (store.KeyRSA or store.KeyECC) and the
// canonical SPKI DER to store. Errors are *DeviceKeyError.
func ParseDeviceKey(data []byte) (alg string, der []byte, err error) {
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return "", nil, &DeviceKeyError{"that is a private key: send the public key only"}
	}
	k, err := protocol.ParsePublicKey(data)
	if err != nil && !bytes.Contains(data, []byte("-----BEGIN ")) {
		if raw, b64err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(data), nil))); b64err == nil && len(raw) > 0 {
			if k2, err2 := protocol.ParsePublicKey(raw); err2 == nil {
				k, err = k2, nil
			}
		}
	}
	switch {
	case errors.Is(err, protocol.ErrKeyType):
		return "", nil, &DeviceKeyError{"unsupported key type: want RSA or EC P-256"}
	case err != nil:
		if curve := ecCurveOf(data); curve != "" {
			// An EC key on a curve Go does not parse, such as secp256k1.
			return "", nil, &DeviceKeyError{fmt.Sprintf("EC key on curve %s: want P-256", curve)}
		}
		return "", nil, &DeviceKeyError{"not a public key: want PEM (PUBLIC KEY or RSA PUBLIC KEY) or DER"}
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits != deviceKeyBits && bits != deviceKeyBitsAlt {
			return "", nil, &DeviceKeyError{fmt.Sprintf("RSA key of %d bits: want %d (or %d)", bits, deviceKeyBits, deviceKeyBitsAlt)}
		}
		alg = store.KeyRSA
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", nil, &DeviceKeyError{fmt.Sprintf("EC key on curve %s: want P-256", k.Curve.Params().Name)}
		}
		alg = store.KeyECC
	default:
		return "", nil, &DeviceKeyError{"unsupported key type: want RSA or EC P-256"}
	}
	der, err = protocol.MarshalPublicKeyDER(k)
	if err != nil {
		return "", nil, &DeviceKeyError{"the key cannot be encoded: " + err.Error()}
	}
	return alg, der, nil
}

// ecCurves names the curves of EC keys that devices might be given by
// mistake, by the object identifier in their SPKI.
var ecCurves = map[string]string{
	"1.3.132.0.10":          "secp256k1",
	"1.2.840.10045.3.1.1":   "P-192",
	"1.3.132.0.33":          "P-224",
	"1.3.132.0.34":          "P-384",
	"1.3.132.0.35":          "P-521",
	"1.3.36.3.3.2.8.1.1.7":  "brainpoolP256r1",
	"1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
}

// oidECPublicKey is id-ecPublicKey, the SPKI algorithm of EC keys.
var oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

// ecCurveOf returns the curve of an EC public key that ParsePublicKey
// refused, given as a "PUBLIC KEY" PEM block, SPKI DER or that DER in
// base64: its name, or its object identifier when unnamed. It returns ""
// for anything else.
func ecCurveOf(data []byte) string {
	der := data
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		der = nil
		for rest := data; der == nil; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				return ""
			}
			if block.Type == "PUBLIC KEY" {
				der = block.Bytes
			}
		}
	} else if raw, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(data), nil))); err == nil && len(raw) > 0 {
		der = raw
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil || !spki.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return ""
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil {
		return ""
	}
	if name, ok := ecCurves[curve.String()]; ok {
		return name
	}
	return curve.String()
}

// Provisioning failures.
var (
	errDeviceIDInvalid = errorf(http.StatusBadRequest, "Invalid device ID: want 24 hex characters")
	errNoKey           = errorf(http.StatusBadRequest, "No key provided")
	errKeyAlgorithm    = errorf(http.StatusBadRequest, "algorithm must be rsa or ecc")
	errDeviceForeign   = &Error{Status: http.StatusForbidden, Message: "Permission Denied",
		Info: "That device belongs to someone else"}
	// errKeyInUse refuses an EC key that another device has: a Gen 3
	// device is known by its key alone until its Hello names it. Which
	// device has it is not said.
	errKeyInUse = &Error{Status: http.StatusConflict, Message: "Public key already in use",
		Info: "Another device has this key: each device needs its own key pair"}
)

// parseDeviceID validates a device ID path parameter (24 hex characters,
// any case) and returns it in lower case.
func parseDeviceID(s string) (string, error) {
	id, err := protocol.ParseDeviceID(s)
	if err != nil {
		return "", errDeviceIDInvalid
	}
	return id.String(), nil
}

// handleProvision is POST /v1/provisioning/{id}, what `particle keys send`
// and `keys doctor` call
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key). Fields:
// publicKey (required), algorithm (rsa|ecc; checked, but the key's own type
// decides), product_id (optional, ID or slug); filename, order and the deviceID
// the CLI repeats in the body are ignored: the path names the device. The
// answer is {"ok":true,"id":ID,"device_id":ID}: particle-cli only checks that
// the body has no "error".
//
// Who may provision (Particle does not say):
//   - Customers never (403): their devices are keyed by the product team.
//   - A user may key a device ID that Wick does not know, one that has
//     neither owner nor product, or one the user owns. Keying a device
//     with neither owner nor product also claims it to the user: whoever
//     holds the key controls the device (and a simulator that keys its
//     devices through the API thereby gives them to the token's user).
//   - With product_id, the caller must be on that product's team (or hold
//     its product token); the device moves into the product and is not
//     claimed. A product token without product_id means its own product.
//   - The team of the product a device is in may re-key it, whoever owns
//     it; nobody else may re-key a device that has an owner or a product
//     (403 "Permission Denied", info "That device belongs to someone
//     else").
//   - API users (scoped tokens) are refused like on other user routes.
func (s *server) handleProvision(rq *request) error {
	p := rq.principal
	if p.Kind == store.KindCustomer {
		return errForbidden
	}
	id, err := parseDeviceID(rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	key := rq.params.str("publicKey")
	if strings.TrimSpace(key) == "" {
		return errNoKey
	}
	switch strings.ToLower(strings.TrimSpace(rq.params.str("algorithm"))) {
	case "", store.KeyRSA, store.KeyECC, "ec":
	default:
		return errKeyAlgorithm
	}
	alg, der, err := ParseDeviceKey([]byte(key))
	if err != nil {
		var ke *DeviceKeyError
		if errors.As(err, &ke) {
			return errorf(http.StatusBadRequest, "Invalid public key: "+ke.Reason)
		}
		return err
	}
	prod, err := s.provisioningProduct(rq)
	if err != nil {
		return err
	}
	existing, err := s.store.DeviceByID(rq.ctx, id)
	switch {
	case err == nil:
		if err := s.checkRekey(rq, existing, prod); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	var productID int64
	if prod != nil {
		productID = prod.ID
	}
	d, err := s.store.ProvisionDevice(rq.ctx, id, alg, der, productID)
	if errors.Is(err, store.ErrConflict) {
		return errKeyInUse
	}
	if err != nil {
		return fmt.Errorf("api: provision device: %w", err)
	}
	// The holder of the key controls the device: a user who keys an
	// unclaimed device outside any product becomes its owner.
	if p.Kind == store.KindUser && d.OwnerID == "" && d.CustomerID == "" && d.ProductID == 0 {
		if d, err = s.store.ClaimDevice(rq.ctx, id, p.UserID, ""); err != nil {
			return fmt.Errorf("api: claim provisioned device: %w", err)
		}
	}
	// At debug: provisioning a fleet (100,000 devices) logged a line each,
	// every request queueing on the log handler's lock (docs/operations.md,
	// "Start-up log").
	s.log.LogAttrs(rq.ctx, slog.LevelDebug, "device provisioned",
		slog.String("device", id), slog.String("algorithm", alg), slog.Int64("product", d.ProductID),
		slog.String("owner", d.OwnerID), slog.String("by", p.Kind), slog.String("by_user", p.UserID))
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "id": id, "device_id": id})
}

// provisioningProduct returns the product a provisioning request puts the
// device in, nil for none: product_id when given (the caller must be on
// its team, or hold its product token), else a product token's own
// product.
func (s *server) provisioningProduct(rq *request) (*store.Product, error) {
	p := rq.principal
	ref := strings.TrimSpace(rq.params.str("product_id"))
	if ref == "" {
		if p.Kind != store.KindProduct {
			return nil, nil
		}
		prod, err := s.store.ProductByID(rq.ctx, p.ProductID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errForbidden
		}
		return prod, err
	}
	prod, err := s.lookupProduct(rq, ref)
	if err != nil {
		return nil, err
	}
	if err := s.checkTeam(rq, prod); err != nil {
		return nil, err
	}
	return prod, nil
}

// checkRekey lets the caller replace the key of an existing device d, to
// be put in product prod (nil: none): its owning user, the team of its
// product, and anyone for a device that has neither owner nor product.
// Others get 403.
func (s *server) checkRekey(rq *request, d *store.Device, prod *store.Product) error {
	p := rq.principal
	switch {
	case p.Kind == store.KindUser && d.OwnerID == p.UserID:
		return nil
	case d.OwnerID == "" && d.CustomerID == "" && d.ProductID == 0:
		return nil
	case d.ProductID == 0:
		return errDeviceForeign
	case prod != nil && prod.ID == d.ProductID:
		return nil // the team of prod was checked already
	}
	current, err := s.store.ProductByID(rq.ctx, d.ProductID)
	if errors.Is(err, store.ErrNotFound) {
		return errDeviceForeign
	}
	if err != nil {
		return err
	}
	if err := s.checkTeam(rq, current); err != nil {
		if errors.Is(err, errForbidden) {
			return errDeviceForeign
		}
		return err
	}
	return nil
}
