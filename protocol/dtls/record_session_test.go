package dtls

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// TestMbedTLSSession checks the whole record path against a real session
// between an mbedTLS client and server with the draft connection ID
// (testdata/mbedtls_session.txt, made by testdata/gen/session.c on
// Particle's mbedTLS fork): the key block from the master secret, opening
// the client's CID records (also as type 253), sealing both directions byte
// for byte as mbedTLS did, and both Finished messages of the handshake.
func TestMbedTLSSession(t *testing.T) {
	v := map[string][][]byte{}
	for _, f := range readVectors(t, "mbedtls_session.txt") {
		if len(f) != 2 {
			t.Fatalf("bad line %q", f)
		}
		v[f[0]] = append(v[f[0]], unhex(t, f[1]))
		if f[0] == "c2s" || f[0] == "s2c" {
			v["flight"] = append(v["flight"], unhex(t, f[1]))
			v["from_client"] = append(v["from_client"], []byte{boolByte(f[0] == "c2s")})
		}
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
	checkFinished(t, v["flight"], v["from_client"], master, client, server)
}

// boolByte is 1 for true.
func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// checkFinished walks the handshake datagrams: plaintext handshake messages
// go into the transcript, and each side's encrypted Finished (a CID record
// from the client, a plain one from the server) must open and carry
// VerifyData of the transcript so far.
func checkFinished(t *testing.T, flight, fromClient [][]byte, master []byte, client, server *Cipher) {
	t.Helper()
	var transcript []byte
	finished := 0
	for i, dgram := range flight {
		for rest := dgram; len(rest) > 0; {
			r, after, err := ParseRecord(rest)
			if err != nil {
				t.Fatalf("datagram %d: %v", i, err)
			}
			rest = after
			body, typ := r.Body, r.Header.Type
			if r.Header.Epoch == 1 {
				c, label := server, ServerFinished
				if fromClient[i][0] == 1 {
					c, label = client, ClientFinished
					if len(r.Header.CID) != CIDLen {
						t.Fatal("client's Finished has no CID")
					}
				}
				if body, typ, err = c.Open(nil, &r); err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				// Finished: type 20, length 12, message seq, offset 0, fragment length 12.
				if typ != TypeHandshake || len(body) != HandshakeHeaderLen+VerifyDataLen || body[0] != 20 {
					t.Fatalf("datagram %d: epoch-1 record %v %x is not a Finished", i, typ, body)
				}
				sum := sha256.Sum256(transcript)
				if want := VerifyData(master, label, sum[:]); !bytes.Equal(body[HandshakeHeaderLen:], want[:]) {
					t.Fatalf("%s: verify_data %x, computed %x", label, body[HandshakeHeaderLen:], want)
				}
				finished++
			}
			if typ != TypeHandshake {
				continue // ChangeCipherSpec
			}
			for len(body) > 0 {
				if len(body) < HandshakeHeaderLen {
					t.Fatalf("datagram %d: short handshake message", i)
				}
				n := int(body[1])<<16 | int(binary.BigEndian.Uint16(body[2:4]))
				if off := int(body[6])<<16 | int(binary.BigEndian.Uint16(body[7:9])); off != 0 || len(body) < HandshakeHeaderLen+n {
					t.Fatalf("datagram %d: fragmented handshake message", i)
				}
				transcript = append(transcript, body[:HandshakeHeaderLen+n]...)
				body = body[HandshakeHeaderLen+n:]
			}
		}
	}
	if finished != 2 {
		t.Fatalf("found %d Finished messages, want 2", finished)
	}
}
