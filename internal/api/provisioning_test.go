package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
)

// Device keys of protocol/testdata, made by openssl (see gen.sh there).
var (
	devicePubPEM    = readTestdata("device_key.pub.pem")    // RSA-1024, SPKI PEM
	devicePubDER    = readTestdata("device_key.pub.der")    // same key, SPKI DER
	deviceRSAPubDER = readTestdata("device_key.rsapub.der") // same key, PKCS#1 DER
	device2PubPEM   = readTestdata("device2_key.pub.pem")   // another RSA-1024 key
	deviceECPubPEM  = readTestdata("device_ec_key.pub.pem") // P-256, SPKI PEM
	deviceECPubDER  = readTestdata("device_ec_key.pub.der")
	serverRSAPubPEM = readTestdata("server_key.rsapub.pem") // RSA-2048, PKCS#1 PEM
	devicePrivPEM   = readTestdata("device_key.pem")        // a private key: refused
	// devicePKCS1PEM is device_key in the "RSA PUBLIC KEY" PEM flavour.
	devicePKCS1PEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte(deviceRSAPubDER)}))
)

// readTestdata returns a file of protocol/testdata; it panics when absent
// (package initialisation has no testing.T).
func readTestdata(name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "protocol", "testdata", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// smallRSAPEM is a syntactically valid 512-bit RSA public key.
func smallRSAPEM(t testing.TB) string {
	n := new(big.Int).Lsh(big.NewInt(1), 511)
	n.Add(n, big.NewInt(0x1234567))
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// p384PEM is an EC public key on a curve devices do not use.
func p384PEM(t testing.TB) string {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// newECPEM returns the SPKI PEM and DER of a fresh P-256 key.
func newECPEM(t testing.TB) (pemText, der string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b})), string(b)
}

// foreignCurveDER is the SPKI DER of an EC public key on the curve with
// object identifier oid, which Go's x509 package does not parse (such as
// secp256k1, 1.3.132.0.10). The point is random bytes: the curve is refused
// before the point matters.
func foreignCurveDER(t testing.TB, oid asn1.ObjectIdentifier) []byte {
	param, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	point := make([]byte, 65)
	point[0] = 4
	rand.Read(point[1:])
	der, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}{
		pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, Parameters: asn1.RawValue{FullBytes: param}},
		asn1.BitString{Bytes: point, BitLength: 8 * len(point)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// secp256k1 is the object identifier of the curve secp256k1.
var secp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}

// Device IDs of the provisioning tests.
const (
	provA = "0a0a0a0a0a0a0a0a0a0a0a0a" // the owner's, keyed as particle-cli does
	provB = "0b0b0b0b0b0b0b0b0b0b0b0b" // the other user's EC device
	provC = "0c0c0c0c0c0c0c0c0c0c0c0c" // a 2048-bit key
	provD = "0d0d0d0d0d0d0d0d0d0d0d0d" // base64 DER
	provE = "0e0e0e0e0e0e0e0e0e0e0e0e" // provisioned into widget by its team
	provF = "0f0f0f0f0f0f0f0f0f0f0f0f" // provisioned by widget's product token
	provG = "1a1a1a1a1a1a1a1a1a1a1a1a" // known to Wick with neither key, owner nor product
	provH = "1b1b1b1b1b1b1b1b1b1b1b1b" // offered provB's EC key
)

// TestProvisioning covers POST /v1/provisioning/{id}
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key): key formats,
// device IDs, and who may key which device.
func TestProvisioning(t *testing.T) {
	w := newWorld(t, api.Config{})
	ctx := context.Background()
	path := func(id string) string { return "/v1/provisioning/" + id }
	ok := func(id string) string { return `{"ok":true,"id":"` + id + `","device_id":"` + id + `"}` }
	// cli is the request particle-cli's `keys send` makes: a form with the
	// token in the body and the device ID repeated.
	cli := func(id, key, alg string, extra ...string) apitest.Req {
		kv := append([]string{"deviceID", id, "publicKey", key, "order", "manual_1700000000000",
			"filename", "cli", "algorithm", alg, "access_token", w.ownerToken}, extra...)
		return apitest.Req{Method: "POST", Path: path(id), Form: form(kv...)}
	}
	as := func(token, id string, body map[string]any) apitest.Req {
		return apitest.Req{Method: "POST", Path: path(id), Token: token, JSON: body}
	}
	badKey := func(reason string) string { return `{"ok":false,"error":"Invalid public key: ` + reason + `"}` }
	// stored checks what the store holds for id afterwards.
	stored := func(id, alg, der, ownerID, customerID string, productID int64) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, _ *apitest.Resp) {
			d, err := w.Store.DeviceByID(ctx, id)
			if err != nil {
				tb.Fatalf("device %s: %v", id, err)
			}
			if d.KeyAlgorithm != alg || !bytes.Equal(d.PublicKey, []byte(der)) {
				tb.Errorf("key = %s %x, want %s %x", d.KeyAlgorithm, d.PublicKey, alg, der)
			}
			if d.OwnerID != ownerID || d.CustomerID != customerID || d.ProductID != productID {
				tb.Errorf("owner %q, customer %q, product %d; want %q, %q, %d",
					d.OwnerID, d.CustomerID, d.ProductID, ownerID, customerID, productID)
			}
			// Keying claims an unowned device, which names it
			// (docs/api.md, Device names); a device left unowned has none.
			if owned := ownerID != "" || customerID != ""; owned != (d.Name != "") {
				tb.Errorf("name %q of a device owned by %q/%q; want a name exactly when owned", d.Name, ownerID, customerID)
			}
		}
	}
	if _, err := w.Store.ProvisionDevice(ctx, provG, "", nil, 0); err != nil {
		t.Fatal(err)
	}
	p384, small := p384PEM(t), smallRSAPEM(t)
	ecF, ecFDER := newECPEM(t)   // provF's key
	ecB2, ecB2DER := newECPEM(t) // provB's next key
	k1PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: foreignCurveDER(t, secp256k1)}))
	inUse := `{"ok":false,"error":"Public key already in use","info":"Another device has this key: each device needs its own key pair"}`
	absent := func(id string) func(testing.TB, *apitest.Resp) {
		return func(tb testing.TB, _ *apitest.Resp) {
			if _, err := w.Store.DeviceByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
				tb.Errorf("device %s: err = %v; want it absent", id, err)
			}
		}
	}
	pid := itoa(w.product.ID)
	forbidden := `{"ok":false,"error":"Permission Denied"}`
	foreign := `{"ok":false,"error":"Permission Denied","info":"That device belongs to someone else"}`

	w.Run(t, []apitest.Scenario{
		// Key formats.
		{Name: "particle-cli form, SPKI PEM, upper-case ID", Req: cli(strings.ToUpper(provA), devicePubPEM, "rsa"),
			Status: 200, Want: ok(provA), Check: stored(provA, "rsa", devicePubDER, w.owner.ID, "", 0)},
		{Name: "re-key own device, PKCS#1 PEM", Req: cli(provA, devicePKCS1PEM, "rsa"),
			Status: 200, Want: ok(provA), Check: stored(provA, "rsa", devicePubDER, w.owner.ID, "", 0)},
		{Name: "EC key, JSON, no algorithm", Req: as(w.otherToken, provB, map[string]any{"publicKey": deviceECPubPEM}),
			Status: 200, Want: ok(provB), Check: stored(provB, "ecc", deviceECPubDER, w.other.ID, "", 0)},
		{Name: "EC key sent as rsa, as particle-api-js defaults", Req: as(w.otherToken, provB,
			map[string]any{"publicKey": deviceECPubPEM, "algorithm": "rsa", "filename": "particle-api"}),
			Status: 200, Want: ok(provB), Check: stored(provB, "ecc", deviceECPubDER, w.other.ID, "", 0)},
		{Name: "RSA-2048 PKCS#1 PEM", Req: as(w.ownerToken, provC, map[string]any{"publicKey": serverRSAPubPEM}),
			Status: 200, Want: ok(provC), Check: func(tb testing.TB, _ *apitest.Resp) {
				d, err := w.Store.DeviceByID(ctx, provC)
				if err != nil || d.KeyAlgorithm != "rsa" || len(d.PublicKey) != 294 {
					tb.Errorf("device %+v, %v; want a 294-byte RSA-2048 SPKI", d, err)
				}
			}},
		{Name: "base64 of the DER", Req: as(w.ownerToken, provD, map[string]any{
			"publicKey": base64.StdEncoding.EncodeToString([]byte(devicePubDER))}),
			Status: 200, Want: ok(provD), Check: stored(provD, "rsa", devicePubDER, w.owner.ID, "", 0)},
		{Name: "not a key", Req: cli(provA, "hello", "rsa"), Status: 400,
			Want: badKey("not a public key: want PEM (PUBLIC KEY or RSA PUBLIC KEY) or DER")},
		{Name: "truncated PEM", Req: cli(provA, devicePubPEM[:120], "rsa"), Status: 400,
			Want: badKey("not a public key: want PEM (PUBLIC KEY or RSA PUBLIC KEY) or DER")},
		{Name: "private key refused", Req: cli(provA, devicePrivPEM, "rsa"), Status: 400,
			Want: badKey("that is a private key: send the public key only")},
		{Name: "P-384", Req: cli(provA, p384, "ecc"), Status: 400, Want: badKey("EC key on curve P-384: want P-256")},
		{Name: "secp256k1", Req: cli(provA, k1PEM, "ecc"), Status: 400, Want: badKey("EC key on curve secp256k1: want P-256")},
		{Name: "RSA-512", Req: cli(provA, small, "rsa"), Status: 400, Want: badKey("RSA key of 512 bits: want 1024 (or 2048)")},
		{Name: "no key", Req: cli(provA, "  ", "rsa"), Status: 400, Want: `{"ok":false,"error":"No key provided"}`},
		{Name: "unknown algorithm", Req: cli(provA, devicePubPEM, "dsa"), Status: 400,
			Want: `{"ok":false,"error":"algorithm must be rsa or ecc"}`},
		{Name: "a failed request changed nothing", Req: cli(provA, devicePubPEM, "rsa"), Status: 200,
			Check: stored(provA, "rsa", devicePubDER, w.owner.ID, "", 0)},

		// Device IDs.
		{Name: "short ID", Req: as(w.ownerToken, "0a0a", map[string]any{"publicKey": devicePubPEM}), Status: 400,
			Want: `{"ok":false,"error":"Invalid device ID: want 24 hex characters"}`},
		{Name: "25 characters", Req: as(w.ownerToken, provA+"0", map[string]any{"publicKey": devicePubPEM}), Status: 400,
			Want: `{"ok":false,"error":"Invalid device ID: want 24 hex characters"}`},
		{Name: "not hex", Req: as(w.ownerToken, "0a0a0a0a0a0a0a0a0a0a0a0z", map[string]any{"publicKey": devicePubPEM}), Status: 400,
			Want: `{"ok":false,"error":"Invalid device ID: want 24 hex characters"}`},

		// Who may key what.
		{Name: "another user's device", Req: as(w.otherToken, provA, map[string]any{"publicKey": device2PubPEM}),
			Status: 403, Want: foreign, Check: stored(provA, "rsa", devicePubDER, w.owner.ID, "", 0)},
		{Name: "customers never", Req: as(w.customerToken, "2a2a2a2a2a2a2a2a2a2a2a2a", map[string]any{"publicKey": devicePubPEM}),
			Status: 403, Want: forbidden},
		{Name: "API users never", Req: as(w.apiUserToken, "2a2a2a2a2a2a2a2a2a2a2a2a", map[string]any{"publicKey": devicePubPEM}),
			Status: 400, Want: `{"error":"unauthorized","error_description":"API users are not allowed to call this endpoint"}`},
		{Name: "known device with nobody: keyed and claimed", Req: as(w.otherToken, provG, map[string]any{"publicKey": device2PubPEM}),
			Status: 200, Want: ok(provG), Check: func(tb testing.TB, _ *apitest.Resp) {
				d, err := w.Store.DeviceByID(ctx, provG)
				if err != nil || d.OwnerID != w.other.ID || d.KeyAlgorithm != "rsa" {
					tb.Errorf("device %+v, %v; want keyed and owned by the other user", d, err)
				}
			}},
		{Name: "team provisions into its product by ID", Req: cli(provE, devicePubPEM, "rsa", "product_id", pid),
			Status: 200, Want: ok(provE), Check: stored(provE, "rsa", devicePubDER, "", "", w.product.ID)},
		{Name: "again by slug", Req: cli(provE, devicePubPEM, "rsa", "product_id", "widget"),
			Status: 200, Want: ok(provE), Check: stored(provE, "rsa", devicePubDER, "", "", w.product.ID)},
		{Name: "unknown product", Req: cli(provE, devicePubPEM, "rsa", "product_id", "99999"),
			Status: 404, Want: `{"ok":false,"error":"Product not found"}`},
		{Name: "not on the team", Req: as(w.otherToken, "2b2b2b2b2b2b2b2b2b2b2b2b", map[string]any{"publicKey": devicePubPEM, "product_id": w.product.ID}),
			Status: 403, Want: forbidden},
		{Name: "an unclaimed product device is the team's", Req: as(w.otherToken, provE, map[string]any{"publicKey": device2PubPEM}),
			Status: 403, Want: foreign, Check: stored(provE, "rsa", devicePubDER, "", "", w.product.ID)},
		{Name: "product token, its own product", Req: as(w.productToken, provF, map[string]any{"publicKey": ecF}),
			Status: 200, Want: ok(provF), Check: stored(provF, "ecc", ecFDER, "", "", w.product.ID)},
		{Name: "product token, another product", Req: as(w.productToken, provF, map[string]any{"publicKey": ecF, "product_id": "gadget"}),
			Status: 403, Want: forbidden},

		// An EC key is one device's identity (the DTLS transport knows the
		// device by its key): another device cannot have it.
		{Name: "EC key of another device, new device", Req: cli(provH, deviceECPubPEM, "ecc"),
			Status: 409, Want: inUse, Check: absent(provH)},
		{Name: "EC key of another device, own device", Req: as(w.productToken, provF, map[string]any{"publicKey": deviceECPubPEM}),
			Status: 409, Want: inUse, Check: stored(provF, "ecc", ecFDER, "", "", w.product.ID)},
		{Name: "own EC key again", Req: as(w.otherToken, provB, map[string]any{"publicKey": deviceECPubPEM, "algorithm": "ecc"}),
			Status: 200, Want: ok(provB), Check: stored(provB, "ecc", deviceECPubDER, w.other.ID, "", 0)},
		{Name: "a new key frees the old one", Req: as(w.otherToken, provB, map[string]any{"publicKey": ecB2, "algorithm": "ecc"}),
			Status: 200, Want: ok(provB), Check: stored(provB, "ecc", ecB2DER, w.other.ID, "", 0)},
		{Name: "the freed key", Req: cli(provH, deviceECPubPEM, "ecc"),
			Status: 200, Want: ok(provH), Check: stored(provH, "ecc", deviceECPubDER, w.owner.ID, "", 0)},
		{Name: "RSA keys may be shared", Req: cli(provH, devicePubPEM, "rsa"),
			Status: 200, Want: ok(provH), Check: stored(provH, "rsa", devicePubDER, w.owner.ID, "", 0)},
		{Name: "product token, another user's device", Req: as(w.productToken, provB, map[string]any{"publicKey": deviceECPubPEM}),
			Status: 403, Want: foreign, Check: stored(provB, "ecc", ecB2DER, w.other.ID, "", 0)},
		{Name: "team may not pull another user's device into its product", Req: cli(provB, ecB2, "ecc", "product_id", pid),
			Status: 403, Want: foreign},
		{Name: "owner moves own device into own product", Req: cli(provA, devicePubPEM, "rsa", "product_id", pid),
			Status: 200, Want: ok(provA), Check: stored(provA, "rsa", devicePubDER, w.owner.ID, "", w.product.ID)},
	})

	// A customer-owned product device: its team re-keys it without
	// product_id; the customer's product token too; other users cannot.
	if _, err := w.Store.ClaimDevice(ctx, provE, "", w.customer.ID); err != nil {
		t.Fatal(err)
	}
	w.Run(t, []apitest.Scenario{
		{Name: "team re-keys a customer's device", Req: as(w.ownerToken, provE, map[string]any{"publicKey": device2PubPEM}),
			Status: 200, Want: ok(provE)},
		{Name: "product token re-keys it", Req: as(w.productToken, provE, map[string]any{"publicKey": devicePubPEM}),
			Status: 200, Want: ok(provE), Check: stored(provE, "rsa", devicePubDER, "", w.customer.ID, w.product.ID)},
		{Name: "another user cannot", Req: as(w.otherToken, provE, map[string]any{"publicKey": device2PubPEM}),
			Status: 403, Want: foreign, Check: stored(provE, "rsa", devicePubDER, "", w.customer.ID, w.product.ID)},
		{Name: "nor the customer itself", Req: as(w.customerToken, provE, map[string]any{"publicKey": device2PubPEM}),
			Status: 403, Want: forbidden},
	})
}

// TestParseDeviceKey covers every accepted form and the refusals.
func TestParseDeviceKey(t *testing.T) {
	tests := []struct {
		name, in string
		alg, der string // want; alg "" for an error
		reason   string
	}{
		{name: "SPKI PEM", in: devicePubPEM, alg: "rsa", der: devicePubDER},
		{name: "PKCS#1 PEM", in: devicePKCS1PEM, alg: "rsa", der: devicePubDER},
		{name: "SPKI DER", in: devicePubDER, alg: "rsa", der: devicePubDER},
		{name: "PKCS#1 DER", in: deviceRSAPubDER, alg: "rsa", der: devicePubDER},
		{name: "base64 DER, wrapped", in: wrap64(base64.StdEncoding.EncodeToString([]byte(deviceRSAPubDER))), alg: "rsa", der: devicePubDER},
		{name: "text before the PEM", in: "pasted:\n" + devicePubPEM, alg: "rsa", der: devicePubDER},
		{name: "EC PEM", in: deviceECPubPEM, alg: "ecc", der: deviceECPubDER},
		{name: "EC DER", in: deviceECPubDER, alg: "ecc", der: deviceECPubDER},
		{name: "empty", in: "", reason: "not a public key: want PEM (PUBLIC KEY or RSA PUBLIC KEY) or DER"},
		{name: "certificate", in: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
			reason: "not a public key: want PEM (PUBLIC KEY or RSA PUBLIC KEY) or DER"},
		{name: "private PEM", in: devicePrivPEM, reason: "that is a private key: send the public key only"},
		{name: "private DER", in: readTestdata("device_key.der"), reason: "not a public key: want PEM (PUBLIC KEY or RSA PUBLIC KEY) or DER"},
		{name: "secp256k1 DER", in: string(foreignCurveDER(t, secp256k1)), reason: "EC key on curve secp256k1: want P-256"},
		{name: "secp256k1 base64", in: base64.StdEncoding.EncodeToString(foreignCurveDER(t, secp256k1)),
			reason: "EC key on curve secp256k1: want P-256"},
		{name: "secp256k1 PEM after EC PARAMETERS", in: "-----BEGIN EC PARAMETERS-----\nBgUrgQQACg==\n-----END EC PARAMETERS-----\n" +
			string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: foreignCurveDER(t, secp256k1)})),
			reason: "EC key on curve secp256k1: want P-256"},
		{name: "unnamed curve", in: string(foreignCurveDER(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1})),
			reason: "EC key on curve 1.3.6.1.4.1.99999.1: want P-256"},
		{name: "EC PARAMETERS alone", in: "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
			reason: "not a public key: want PEM (PUBLIC KEY or RSA PUBLIC KEY) or DER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alg, der, err := api.ParseDeviceKey([]byte(tt.in))
			if tt.alg == "" {
				var ke *api.DeviceKeyError
				if !errors.As(err, &ke) || ke.Reason != tt.reason {
					t.Fatalf("err = %v; want reason %q", err, tt.reason)
				}
				if !strings.HasPrefix(err.Error(), "api: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil || alg != tt.alg || !bytes.Equal(der, []byte(tt.der)) {
				t.Fatalf("= %q %x, %v; want %q %x", alg, der, err, tt.alg, tt.der)
			}
		})
	}
}

// wrap64 breaks base64 text into 64-character lines.
func wrap64(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

// FuzzParseDeviceKey checks that any input is refused cleanly or yields a
// canonical key that parses again to itself.
func FuzzParseDeviceKey(f *testing.F) {
	for _, seed := range []string{devicePubPEM, devicePKCS1PEM, devicePubDER, deviceRSAPubDER, deviceECPubPEM,
		deviceECPubDER, serverRSAPubPEM, devicePrivPEM, base64.StdEncoding.EncodeToString([]byte(devicePubDER)), "", "-----BEGIN "} {
		f.Add([]byte(seed))
	}
	f.Add(foreignCurveDER(f, secp256k1))
	f.Fuzz(func(t *testing.T, in []byte) {
		alg, der, err := api.ParseDeviceKey(in)
		if err != nil {
			var ke *api.DeviceKeyError
			if !errors.As(err, &ke) || ke.Reason == "" {
				t.Fatalf("error %v is not a *DeviceKeyError with a reason", err)
			}
			return
		}
		if alg != store.KeyRSA && alg != store.KeyECC {
			t.Fatalf("algorithm %q", alg)
		}
		alg2, der2, err := api.ParseDeviceKey(der)
		if err != nil || alg2 != alg || !bytes.Equal(der2, der) {
			t.Fatalf("canonical DER does not round-trip: %q %x %v", alg2, der2, err)
		}
	})
}

// authzDeviceID is the device of the authorization matrix rows.
const authzDeviceID = "0123456789abcdef01234567"
