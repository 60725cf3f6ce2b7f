package auth

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealSecret(t *testing.T) {
	svc := New(Config{SecretKey: testKey}, nil, nil)
	other := New(Config{SecretKey: bytes.Repeat([]byte{0x43}, 32)}, nil, nil)
	purpose := PurposeWebhookSigning + "0b0000000000000000000001"
	plain := []byte("whsec-0123456789")
	sealed, err := svc.SealSecret(plain, purpose)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Error("sealed data contains the plaintext")
	}
	got, err := svc.OpenSecret(sealed, purpose)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("OpenSecret = %q, %v; want %q", got, err, plain)
	}
	// A TOTP secret is sealed with the bare user ID as additional data; a
	// purpose equal to that ID must not open it, nor the reverse.
	mfa, err := Seal(testKey, plain, []byte("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	bad := func(name string, svc *Service, sealed []byte, purpose string) {
		t.Helper()
		if _, err := svc.OpenSecret(sealed, purpose); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: err = %v; want ErrSealed", name, err)
		}
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	bad("other purpose", svc, sealed, PurposeWebhookSigning+"0b0000000000000000000002")
	bad("other key", other, sealed, purpose)
	bad("tampered", svc, tampered, purpose)
	bad("MFA secret by its user ID", svc, mfa, "user-1")
	if _, err := Open(testKey, sealed, []byte(purpose)); !errors.Is(err, ErrSealed) {
		t.Errorf("Open with the bare purpose: err = %v; want ErrSealed", err)
	}

	noKey := New(Config{}, nil, nil)
	if _, err := noKey.SealSecret(plain, purpose); !errors.Is(err, ErrSealKey) {
		t.Errorf("SealSecret without a key: err = %v; want ErrSealKey", err)
	}
}
