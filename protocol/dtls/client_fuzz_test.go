package dtls

import (
	"bytes"
	"errors"
	"testing"
)

// zeroReader is a deterministic Rand: the client random is all zeros, so a
// server flight recorded once verifies in every fuzz run.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// FuzzClientHandleDatagram feeds two arbitrary datagrams to a client that
// has sent its first ClientHello. Seeds are a real HelloVerifyRequest and
// server flight, so the second datagram reaches the key exchange and the
// Finished check. Nothing may panic, a failed handshake keeps its error,
// and every datagram the client sends parses as records.
func FuzzClientHandleDatagram(f *testing.F) {
	devKey := mustP256(f)
	s := newTestServer(f, devKey)
	s.cfg.Signer = nil
	cfg := &ClientConfig{Key: devKey, ServerKey: &s.cfg.Key.PublicKey, ConnectionID: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Rand: zeroReader{}}
	c, err := NewClientHandshake(cfg)
	if err != nil {
		f.Fatal(err)
	}
	hello := c.Start(t0)
	hvr, _, err := s.cfg.HandleClientHello(t0, testAddr, hello[0])
	if err != nil {
		f.Fatal(err)
	}
	second, _, err := c.HandleDatagram(t0, hvr[0])
	if err != nil {
		f.Fatal(err)
	}
	flight, hs, err := s.cfg.HandleClientHello(t0, testAddr, second[0])
	if err != nil {
		f.Fatal(err)
	}
	clientFlight, _, err := c.HandleDatagram(t0, flight[0])
	if err != nil {
		f.Fatal(err)
	}
	fin, _, err := hs.HandleDatagram(t0, testAddr, clientFlight[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hvr[0], flight[0])
	f.Add(hvr[0], hvr[0])
	f.Add(flight[0], fin[0])
	f.Add([]byte{}, bytes.Repeat([]byte{0x16, 0xfe, 0xfd}, 20))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		c, err := NewClientHandshake(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Start(t0)
		for _, d := range [][]byte{a, b} {
			out, _, err := c.HandleDatagram(t0, d)
			if err != nil {
				if _, again, err2 := c.HandleDatagram(t0, nil); again || !errors.Is(err2, err) {
					t.Fatalf("after %v the next call returns %v", err, err2)
				}
				return
			}
			for _, o := range out {
				for rest := o; len(rest) > 0; {
					if _, rest, err = ParseRecord(rest); err != nil {
						t.Fatalf("client sent a datagram that does not parse: %v", err)
					}
				}
			}
		}
	})
}
