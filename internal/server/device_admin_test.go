package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// testKey reads a key of protocol/testdata.
func testKey(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "protocol", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProvisionDevice keys devices through the admin path in every key
// form and checks what the store holds.
func TestProvisionDevice(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	u, err := CreateUser(ctx, cfg, nil, "dev@example.com", "correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	resolved := cfg
	if err := resolved.Resolve(); err != nil {
		t.Fatal(err)
	}
	st, _, err := openCore(ctx, resolved, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prod := &store.Product{Slug: "widget", Name: "Widget", PlatformID: 6, OwnerID: u.ID}
	if err := st.CreateProduct(ctx, prod, u.Username); err != nil {
		t.Fatal(err)
	}
	rsaDER, ecDER := testKey(t, "device_key.pub.der"), testKey(t, "device_ec_key.pub.der")

	tests := []struct {
		name, id  string
		key       []byte
		product   int64
		wantErr   string
		wantID    string
		wantAlg   string
		wantDER   []byte
		wantInPrd int64
	}{
		{name: "SPKI PEM, upper-case ID", id: "AB0000000000000000000001", key: testKey(t, "device_key.pub.pem"),
			wantID: "ab0000000000000000000001", wantAlg: "rsa", wantDER: rsaDER},
		{name: "SPKI DER", id: "ab0000000000000000000002", key: rsaDER, wantID: "ab0000000000000000000002", wantAlg: "rsa", wantDER: rsaDER},
		{name: "PKCS#1 DER", id: "ab0000000000000000000003", key: testKey(t, "device_key.rsapub.der"),
			wantID: "ab0000000000000000000003", wantAlg: "rsa", wantDER: rsaDER},
		{name: "EC DER into a product", id: "ab0000000000000000000004", key: ecDER, product: prod.ID,
			wantID: "ab0000000000000000000004", wantAlg: "ecc", wantDER: ecDER, wantInPrd: prod.ID},
		{name: "re-key, product kept", id: "ab0000000000000000000004", key: testKey(t, "device_ec_key.pub.pem"),
			wantID: "ab0000000000000000000004", wantAlg: "ecc", wantDER: ecDER, wantInPrd: prod.ID},
		{name: "EC key of another device", id: "ab0000000000000000000005", key: testKey(t, "device_ec_key.pub.pem"),
			wantErr: "device ab0000000000000000000004 already has this key"},
		{name: "RSA key of another device", id: "ab0000000000000000000006", key: rsaDER,
			wantID: "ab0000000000000000000006", wantAlg: "rsa", wantDER: rsaDER},
		{name: "bad ID", id: "ab00", key: rsaDER, wantErr: "not a device ID"},
		{name: "private key", id: "ab0000000000000000000005", key: testKey(t, "device_key.pem"), wantErr: "private key"},
		{name: "garbage", id: "ab0000000000000000000005", key: []byte("garbage"), wantErr: "not a public key"},
		{name: "unknown product", id: "ab0000000000000000000005", key: rsaDER, product: 999, wantErr: "product 999 does not exist"},
		{name: "negative product", id: "ab0000000000000000000005", key: rsaDER, product: -1, wantErr: "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ProvisionDevice(ctx, cfg, nil, tt.id, tt.key, tt.product)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "server: ") {
					t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.DeviceByID(ctx, tt.wantID)
			if err != nil {
				t.Fatal(err)
			}
			if d.ID != tt.wantID || got.KeyAlgorithm != tt.wantAlg || !bytes.Equal(got.PublicKey, tt.wantDER) ||
				got.ProductID != tt.wantInPrd || got.OwnerID != "" {
				t.Errorf("stored %+v; want %s %s in product %d, unowned", got, tt.wantID, tt.wantAlg, tt.wantInPrd)
			}
		})
	}
	if _, err := st.DeviceByID(ctx, "ab0000000000000000000005"); err == nil {
		t.Error("a refused request stored a device")
	}
}
