package dtls

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary records to Cipher.Open: no panic, and whatever
// opens must seal back to the same record (so only genuine records open).
// The seeds are the golden records and mutations of them.
func FuzzOpen(f *testing.F) {
	vs := loadCCMVectors(f)
	for _, v := range vs {
		f.Add(v.record)
	}
	key, iv := vs[0].key, vs[0].iv
	c, err := NewCipher(key, iv)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _, err := ParseRecord(b)
		if err != nil {
			return
		}
		content, typ, err := c.Open(nil, &r)
		if err != nil {
			return
		}
		// Only a record made with this key opens; it must be one Seal makes.
		// (Seal always writes type 25; a 253 record re-seals as 25.)
		var cid []byte
		if r.Header.Type.HasCID() {
			cid = r.Header.CID
		}
		again, err := c.Seal(nil, typ, r.Header.Epoch, r.Header.Seq, cid, content)
		if errors.Is(err, ErrBadContentType) {
			return
		}
		if err != nil {
			t.Fatalf("re-seal: %v", err)
		}
		want := bytes.Clone(r.Raw)
		if cid != nil {
			want[0] = byte(TypeCID)
		}
		if len(again) == len(want) && !bytes.Equal(again, want) {
			t.Fatalf("opened record differs from its re-seal:\n%x\n%x", want, again)
		}
	})
}
