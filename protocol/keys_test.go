package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"testing"
)

func TestParsePrivateKeyForms(t *testing.T) {
	k := loadTestKeys(t)
	tests := []struct {
		file string
		want *rsa.PrivateKey
	}{
		{"server_key.pem", k.server},     // PEM "RSA PRIVATE KEY" (PKCS#1)
		{"server_key.pk8.pem", k.server}, // PEM "PRIVATE KEY" (PKCS#8)
		{"server_key.der", k.server},     // PKCS#1 DER
		{"device_key.der", k.device},     // PKCS#1 DER, as written into the device
		{"device_key.slot", k.device},    // DER + 0xFF fill to the 612-byte slot
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := ParseRSAPrivateKey(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Fatal("parsed a different key")
			}
		})
	}
	if len(readTestdata(t, "device_key.slot")) != DevicePrivateKeySlot {
		t.Fatal("slot fixture is not 612 bytes")
	}
	ec, err := ParsePrivateKey(readTestdata(t, "device_ec_key.pem")) // "EC PARAMETERS" block first
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ec.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("EC key parsed as %T", ec)
	}
	if _, err := ParseRSAPrivateKey(readTestdata(t, "device_ec_key.pem")); !errors.Is(err, ErrKeyType) {
		t.Fatalf("ParseRSAPrivateKey(EC) error = %v", err)
	}
}

func TestParsePublicKeyForms(t *testing.T) {
	k := loadTestKeys(t)
	serverDER := readTestdata(t, "server_key.pub.der") // openssl's SPKI DER
	deviceDER := readTestdata(t, "device_key.pub.der")
	tests := []struct {
		file string
		want *rsa.PublicKey
		der  []byte
	}{
		{"server_key.pub.pem", &k.server.PublicKey, serverDER},    // PEM "PUBLIC KEY"
		{"server_key.rsapub.pem", &k.server.PublicKey, serverDER}, // PEM "RSA PUBLIC KEY"
		{"server_key.pub.der", &k.server.PublicKey, serverDER},    // SPKI DER
		{"device_key.rsapub.der", &k.device.PublicKey, deviceDER}, // PKCS#1 DER
		{"device_key.pub.pem", &k.device.PublicKey, deviceDER},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			in := readTestdata(t, tc.file)
			got, err := ParseRSAPublicKey(in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Fatal("parsed a different key")
			}
			der, err := CanonicalPublicKeyDER(in)
			if err != nil || !bytes.Equal(der, tc.der) {
				t.Fatalf("canonical DER differs from openssl's: %v", err)
			}
		})
	}
	if len(serverDER) != ServerPublicKeyDER || len(deviceDER) != DevicePublicKeyDER {
		t.Fatalf("SPKI sizes %d/%d, want %d/%d", len(serverDER), len(deviceDER), ServerPublicKeyDER, DevicePublicKeyDER)
	}
	// Text before the PEM block (as in a pasted provisioning request) is ignored.
	withPrefix := append([]byte("device key:\n"), readTestdata(t, "device_key.pub.pem")...)
	if got, err := ParseRSAPublicKey(withPrefix); err != nil || !got.Equal(&k.device.PublicKey) {
		t.Fatalf("PEM with prefix: %v", err)
	}
	ec, err := ParsePublicKey(readTestdata(t, "device_ec_key.pub.der"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ec.(*ecdsa.PublicKey); !ok {
		t.Fatalf("EC public key parsed as %T", ec)
	}
}

func TestParseKeyErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		private bool
		err     error
	}{
		{"garbage", []byte("not a key"), false, ErrKeyFormat},
		{"empty", nil, false, ErrKeyFormat},
		{"private_pem_as_public", readTestdata(t, "server_key.pem"), false, ErrKeyFormat},
		{"certificate_pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), false, ErrKeyFormat},
		{"public_as_private", readTestdata(t, "server_key.pub.pem"), true, ErrKeyFormat},
		{"truncated_der", readTestdata(t, "server_key.pub.der")[:100], false, ErrKeyFormat},
		{"ec_as_rsa", readTestdata(t, "device_ec_key.pub.pem"), false, ErrKeyType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.private {
				_, err = ParsePrivateKey(tc.data)
			} else {
				_, err = ParseRSAPublicKey(tc.data)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("error = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestMarshalKeysRoundTrip(t *testing.T) {
	k := loadTestKeys(t)
	pemPub, err := MarshalPublicKeyPEM(&k.device.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pemPub, readTestdata(t, "device_key.pub.pem")) {
		t.Fatalf("public PEM differs from openssl's:\n%s", pemPub)
	}
	pemPriv, err := MarshalPrivateKeyPEM(k.device)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pemPriv, readTestdata(t, "device_key.pem")) {
		t.Fatalf("private PEM differs from openssl genrsa -traditional:\n%s", pemPriv)
	}
	der, err := MarshalPrivateKeyDER(k.device)
	if err != nil || !bytes.Equal(der, readTestdata(t, "device_key.der")) {
		t.Fatalf("private DER differs from openssl's: %v", err)
	}
	ec, err := ParsePrivateKey(readTestdata(t, "device_ec_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ecPEM, err := MarshalPrivateKeyPEM(ec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(ecPEM)
	if err != nil || !back.(*ecdsa.PrivateKey).Equal(ec) {
		t.Fatalf("EC round trip: %v", err)
	}
}

func TestGenerateKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA key generation is slow")
	}
	d, err := GenerateDeviceKey(nil)
	if err != nil || d.N.BitLen() != DeviceKeyBits {
		t.Fatalf("device key: %v", err)
	}
	der, _ := MarshalPublicKeyDER(&d.PublicKey)
	if len(der) != DevicePublicKeyDER {
		t.Fatalf("device SPKI of %d bytes, want %d", len(der), DevicePublicKeyDER)
	}
}

func TestDeviceID(t *testing.T) {
	id, err := ParseDeviceID("E00FCE680123456789ABCDEF")
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "e00fce680123456789abcdef" || id.IsZero() {
		t.Fatalf("id = %s", id)
	}
	for _, bad := range []string{"", "e00fce68", "e00fce680123456789abcdeg", "e00fce680123456789abcdef00"} {
		if _, err := ParseDeviceID(bad); !errors.Is(err, ErrDeviceID) {
			t.Errorf("ParseDeviceID(%q) error = %v", bad, err)
		}
	}
}

func TestServerKeyBlobGolden(t *testing.T) {
	// The golden blobs were assembled by gen.sh with head/tr/printf, like
	// particle-cli's _formatPublicKey.
	tests := []struct {
		name      string
		transport Transport
		keyFile   string
		host      string
		port      uint16
		golden    string
	}{
		{"tcp_domain", TransportTCP, "server_key.pub.pem", "cloud.example.io", 5683, "server_key_blob_tcp.bin"},
		{"tcp_ipv4_default_port", TransportTCP, "server_key.rsapub.pem", "192.168.1.20", 0, "server_key_blob_tcp_ip.bin"},
		{"udp_ipv4", TransportUDP, "device_ec_key.pub.pem", "10.0.0.1", 5684, "server_key_blob_udp.bin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeServerKeyBlob(tc.transport, readTestdata(t, tc.keyFile), tc.host, tc.port)
			if err != nil {
				t.Fatal(err)
			}
			want := readTestdata(t, tc.golden)
			if !bytes.Equal(got, want) {
				t.Fatalf("blob differs from golden\n got  %x\n want %x", got, want)
			}
			if len(got) != ServerKeyBlobSize(tc.transport) {
				t.Fatalf("blob of %d bytes", len(got))
			}
			dec, err := DecodeServerKeyBlob(tc.transport, want)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := CanonicalPublicKeyDER(readTestdata(t, tc.keyFile))
			if dec.Host != tc.host || dec.Port != tc.port || !bytes.Equal(dec.KeyDER, der) {
				t.Fatalf("decoded %+v", dec)
			}
		})
	}
}

func TestServerKeyBlobErrors(t *testing.T) {
	key := readTestdata(t, "server_key.pub.der")
	if _, err := EncodeServerKeyBlob(TransportTCP, key, "1.2.3", 0); !errors.Is(err, ErrServerHost) {
		t.Errorf("bad IPv4: %v", err)
	}
	long := string(bytes.Repeat([]byte("a"), 65))
	if _, err := EncodeServerKeyBlob(TransportTCP, key, long, 0); !errors.Is(err, ErrServerHost) {
		t.Errorf("65-byte host: %v", err)
	}
	if _, err := EncodeServerKeyBlob(TransportUDP, key, "", 0); !errors.Is(err, ErrServerKeyBlob) {
		t.Errorf("RSA-2048 key in a UDP blob: %v", err)
	}
	if _, err := DecodeServerKeyBlob(TransportTCP, make([]byte, 320)); !errors.Is(err, ErrServerKeyBlob) {
		t.Errorf("wrong size: %v", err)
	}
	blob := readTestdata(t, "server_key_blob_tcp.bin")
	bad := append([]byte(nil), blob...)
	bad[384] = 0x07 // invalid TLV type: the device falls back to the default host
	if dec, err := DecodeServerKeyBlob(TransportTCP, bad); err != nil || dec.Host != "" {
		t.Errorf("invalid TLV: %+v, %v", dec, err)
	}
	bad[0] = 0x00
	if _, err := DecodeServerKeyBlob(TransportTCP, bad); !errors.Is(err, ErrServerKeyBlob) {
		t.Errorf("broken key: %v", err)
	}
	// No host: address area stays 0xFF (firmware default host), port too.
	empty, err := EncodeServerKeyBlob(TransportTCP, key, "", 0)
	if err != nil || empty[384] != 0xFF || empty[450] != 0xFF {
		t.Errorf("empty host blob: %v", err)
	}
}
