package dtls

import (
	"bytes"
	"testing"
)

// TestMbedTLSSession checks the whole record path against a real session
// between an mbedTLS client and server with the draft connection ID
// (testdata/mbedtls_session.txt, made by testdata/gen/session.c on
// Particle's mbedTLS fork): the key block from the master secret, opening
// the client's CID records (also as type 253), and sealing both directions
// byte for byte as mbedTLS did.
func TestMbedTLSSession(t *testing.T) {
	v := map[string][][]byte{}
	for _, f := range readVectors(t, "mbedtls_session.txt") {
		if len(f) != 2 {
			t.Fatalf("bad line %q", f)
		}
		v[f[0]] = append(v[f[0]], unhex(t, f[1]))
	}
	master, cr, sr := v["master"][0], v["client_random"][0], v["server_random"][0]
	keys, err := KeyBlock(master, cr, sr)
	if err != nil {
		t.Fatal(err)
	}
	var kb []byte
	kb = append(append(append(append(kb, keys.ClientKey[:]...), keys.ServerKey[:]...), keys.ClientIV[:]...), keys.ServerIV[:]...)
	if want := v["key_block"][0]; !bytes.Equal(kb, want) {
		t.Fatalf("KeyBlock = %x, mbedTLS %x", kb, want)
	}
	client, err := NewCipher(keys.ClientKey[:], keys.ClientIV[:])
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewCipher(keys.ServerKey[:], keys.ServerIV[:])
	if err != nil {
		t.Fatal(err)
	}
	if len(v["client_record"]) == 0 || len(v["client_record"]) != len(v["client_content"]) {
		t.Fatal("no client records")
	}
	for i, raw := range v["client_record"] {
		want := v["client_content"][i]
		moved := bytes.Clone(raw)
		moved[0] = byte(TypeMoveSession)
		for _, in := range [][]byte{raw, moved} {
			r, rest, err := ParseRecord(in)
			if err != nil || len(rest) != 0 || len(r.Header.CID) != CIDLen {
				t.Fatalf("record %d: %v, header %+v", i, err, r.Header)
			}
			got, typ, err := client.Open(nil, &r)
			if err != nil || typ != TypeApplicationData || !bytes.Equal(got, want) {
				t.Fatalf("record %d type %d: Open = %q %v %v", i, in[0], got, typ, err)
			}
			if in[0] == byte(TypeMoveSession) {
				continue
			}
			again, err := client.Seal(nil, TypeApplicationData, r.Header.Epoch, r.Header.Seq, r.Header.CID, want)
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("record %d: Seal =\n%x\nmbedTLS\n%x", i, again, raw)
			}
		}
	}
	raw, want := v["server_record"][0], v["server_content"][0]
	r, _, err := ParseRecord(raw)
	if err != nil || r.Header.CID != nil {
		t.Fatalf("server record: %v %+v", err, r.Header)
	}
	got, err := server.Seal(nil, TypeApplicationData, r.Header.Epoch, r.Header.Seq, nil, want)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("server Seal =\n%x\nmbedTLS\n%x", got, raw)
	}
	if _, _, err := client.Open(nil, &r); err == nil {
		t.Fatal("server record opened with the client's key")
	}
}
