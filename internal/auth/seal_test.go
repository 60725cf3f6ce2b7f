package auth

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	for _, plain := range [][]byte{nil, []byte("JBSWY3DPEHPK3PXP"), bytes.Repeat([]byte{7}, 1000)} {
		sealed, err := Seal(testKey, plain, []byte("user-1"))
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) > 0 && bytes.Contains(sealed, plain) {
			t.Error("sealed data contains the plaintext")
		}
		got, err := Open(testKey, sealed, []byte("user-1"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
		again, _ := Seal(testKey, plain, []byte("user-1"))
		if bytes.Equal(again, sealed) {
			t.Error("two seals of the same data are equal (nonce reuse)")
		}
	}
}

func TestSealTamper(t *testing.T) {
	plain := []byte("JBSWY3DPEHPK3PXP")
	sealed, err := Seal(testKey, plain, []byte("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := Open(testKey, bad, []byte("user-1")); !errors.Is(err, ErrSealed) {
			t.Errorf("flipping byte %d: Open err = %v; want ErrSealed", i, err)
		}
	}
	otherKey := bytes.Repeat([]byte{0x43}, 32)
	for name, tc := range map[string]struct {
		key, data, ad []byte
	}{
		"other owner": {testKey, sealed, []byte("user-2")},
		"other key":   {otherKey, sealed, []byte("user-1")},
		"truncated":   {testKey, sealed[:len(sealed)-1], []byte("user-1")},
		"too short":   {testKey, sealed[:10], []byte("user-1")},
		"extended":    {testKey, append(bytes.Clone(sealed), 0), []byte("user-1")},
		"empty":       {testKey, nil, []byte("user-1")},
	} {
		if _, err := Open(tc.key, tc.data, tc.ad); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: Open err = %v; want ErrSealed", name, err)
		}
	}
	if _, err := Seal(testKey[:16], plain, nil); !errors.Is(err, ErrSealKey) {
		t.Errorf("Seal with a short key: %v", err)
	}
	if _, err := Open(nil, sealed, nil); !errors.Is(err, ErrSealKey) {
		t.Errorf("Open with no key: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	sealed, err := Seal(testKey, []byte("JBSWY3DPEHPK3PXP"), []byte("u"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte{sealVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, err := Open(testKey, data, []byte("u"))
		if err != nil {
			return
		}
		// Only genuine seals open; reseal and open round-trips.
		again, err := Seal(testKey, plain, []byte("u"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Open(testKey, again, []byte("u")); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("reseal round trip: %q, %v", got, err)
		}
	})
}
