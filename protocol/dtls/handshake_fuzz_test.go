package dtls

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"reflect"
	"testing"
)

// seedCodec adds the valid body from codecs and every captured OpenSSL
// message of type t to f's corpus.
func seedCodec(f *testing.F, name string, t HandshakeType) {
	for _, c := range codecs {
		if c.name == name {
			b, err := hex.DecodeString(c.valid)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, m := range loadCapture(f) {
		h, body, _, err := ParseHandshakeFragment(m.raw)
		if err == nil && h.Type == t {
			f.Add(body)
		}
	}
}

// fuzzCodec checks that fresh's decoder never panics and that whatever it
// accepts round-trips exactly.
func fuzzCodec(f *testing.F, name string, t HandshakeType, fresh func() marshaler) {
	seedCodec(f, name, t)
	f.Fuzz(func(t *testing.T, b []byte) { checkRoundTrip(t, fresh, b) })
}

func FuzzClientHello(f *testing.F) {
	fuzzCodec(f, "ClientHello", HandshakeClientHello, func() marshaler { return &ClientHello{} })
}

func FuzzHelloVerifyRequest(f *testing.F) {
	fuzzCodec(f, "HelloVerifyRequest", HandshakeHelloVerifyRequest, func() marshaler { return &HelloVerifyRequest{} })
}

func FuzzServerHello(f *testing.F) {
	fuzzCodec(f, "ServerHello", HandshakeServerHello, func() marshaler { return &ServerHello{} })
}

func FuzzServerKeyExchange(f *testing.F) {
	fuzzCodec(f, "ServerKeyExchange", HandshakeServerKeyExchange, func() marshaler { return &ServerKeyExchange{} })
}

func FuzzCertificateRequest(f *testing.F) {
	fuzzCodec(f, "CertificateRequest", HandshakeCertificateRequest, func() marshaler { return &CertificateRequest{} })
}

func FuzzRawPublicKeyCertificate(f *testing.F) {
	fuzzCodec(f, "RawPublicKeyCertificate", HandshakeCertificate, func() marshaler { return &RawPublicKeyCertificate{} })
}

func FuzzCertificateChain(f *testing.F) {
	fuzzCodec(f, "CertificateChain", HandshakeCertificate, func() marshaler { return &CertificateChain{} })
}

func FuzzClientKeyExchange(f *testing.F) {
	fuzzCodec(f, "ClientKeyExchange", HandshakeClientKeyExchange, func() marshaler { return &ClientKeyExchange{} })
}

func FuzzCertificateVerify(f *testing.F) {
	fuzzCodec(f, "CertificateVerify", HandshakeCertificateVerify, func() marshaler { return &CertificateVerify{} })
}

func FuzzFinished(f *testing.F) {
	fuzzCodec(f, "Finished", HandshakeFinished, func() marshaler { return &Finished{} })
}

func FuzzParseServerHelloDone(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := ParseServerHelloDone(b); (err == nil) != (len(b) == 0) {
			t.Fatalf("% x: %v", b, err)
		}
	})
}

// FuzzHelloExtensions decodes the extensions of a ClientHello or ServerHello
// body and checks that encoding the decoded view and decoding it again gives
// the same view.
func FuzzHelloExtensions(f *testing.F) {
	seedCodec(f, "ClientHello", HandshakeClientHello)
	seedCodec(f, "ServerHello", HandshakeServerHello)
	f.Fuzz(func(t *testing.T, b []byte) {
		var exts []Extension
		fromServer := false
		var ch ClientHello
		var sh ServerHello
		switch {
		case ch.Unmarshal(b) == nil:
			exts = ch.Extensions
		case sh.Unmarshal(b) == nil:
			exts, fromServer = sh.Extensions, true
		default:
			return
		}
		h, err := ParseHelloExtensions(exts, fromServer)
		if err != nil {
			return
		}
		enc, err := h.Extensions(fromServer)
		if err != nil {
			t.Fatalf("decoded view %+v does not encode: %v", h, err)
		}
		h2, err := ParseHelloExtensions(enc, fromServer)
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("%+v re-decodes as %+v (%v)", h, h2, err)
		}
	})
}

// FuzzHandshakeFragments feeds arbitrary bytes, read as a run of handshake
// fragments, to a small reassembler: it must never panic, hold more than
// its limits, or hand out a message that breaks them.
func FuzzHandshakeFragments(f *testing.F) {
	for _, m := range loadCapture(f) {
		f.Add(m.raw)
	}
	frags, _ := FragmentHandshake(HandshakeCertificate, 0, bytes.Repeat([]byte{1}, 40), 7)
	f.Add(bytes.Join(frags, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &Reassembler{MaxMessageLen: 512, MaxFragments: 8, MaxAhead: 3}
		for len(b) > 0 {
			h, frag, rest, err := ParseHandshakeFragment(b)
			if err != nil {
				return
			}
			if h.FragmentOffset+h.FragmentLength > h.Length || uint32(len(frag)) != h.FragmentLength {
				t.Fatalf("parsed an inconsistent fragment %+v", h)
			}
			_ = r.Add(h, frag)
			if len(r.pending) > 4 {
				t.Fatalf("%d messages pending, limit 4", len(r.pending))
			}
			for m, ok := r.Next(); ok; m, ok = r.Next() {
				if len(m.Body) > 512 {
					t.Fatalf("message of %d bytes handed out", len(m.Body))
				}
			}
			b = rest
		}
	})
}

// FuzzReassemblerRoundTrip splits a message into fragments, delivers them
// shuffled and partly duplicated, and expects the original message back.
func FuzzReassemblerRoundTrip(f *testing.F) {
	f.Add([]byte("a ClientHello body"), uint8(5), uint64(1))
	f.Add([]byte{}, uint8(1), uint64(2))
	f.Add(bytes.Repeat([]byte{9}, 300), uint8(64), uint64(3))
	f.Fuzz(func(t *testing.T, body []byte, size uint8, seed uint64) {
		if len(body) > 2048 || size == 0 {
			return
		}
		frags, err := FragmentHandshake(HandshakeClientHello, 7, body, int(size))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, seed))
		rng.Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
		frags = append(frags, frags[:len(frags)/2]...)
		r := &Reassembler{MaxFragments: len(frags) + 1}
		r.next = 7
		for _, fr := range frags {
			h, b, rest, err := ParseHandshakeFragment(fr)
			if err != nil || len(rest) != 0 {
				t.Fatal(err)
			}
			if err := r.Add(h, b); err != nil {
				t.Fatal(err)
			}
		}
		m, ok := r.Next()
		if !ok || m.Type != HandshakeClientHello || m.Seq != 7 || !bytes.Equal(m.Body, body) {
			t.Fatalf("got %+v %v", m, ok)
		}
	})
}
