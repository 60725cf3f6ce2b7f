package dtls

import (
	"bytes"
	"testing"
)

// FuzzServerHandleDatagram feeds arbitrary datagrams to a handshake that has
// accepted a valid ClientHello, optionally after the device's valid
// Certificate and ClientKeyExchange so that epoch-1 paths are reached. It
// checks that nothing panics and that what the handshake holds stays bounded.
func FuzzServerHandleDatagram(f *testing.F) {
	devKey := mustP256(f)
	s := newTestServer(f, devKey)
	s.cfg.Signer = nil
	f.Add(byte(0), []byte{})
	f.Add(byte(1), bytes.Repeat([]byte{0x16, 0xfe, 0xfd}, 20))
	// Seeds: the records of one real client flight, alone and joined.
	d := newTestDevice(f, devKey, &s.cfg.Key.PublicKey, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	out, _, err := s.cfg.HandleClientHello(t0, testAddr, d.hello(nil))
	if err != nil {
		f.Fatal(err)
	}
	out, _, err = s.cfg.HandleClientHello(t0, testAddr, d.hello(d.cookie(out[0])))
	if err != nil {
		f.Fatal(err)
	}
	recs := d.clientFlight(out[0])
	for _, r := range recs {
		f.Add(byte(0), r)
		f.Add(byte(1), r)
	}
	f.Add(byte(0), bytes.Join(recs, nil))
	f.Add(byte(2), bytes.Join(recs, nil))

	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		d := newTestDevice(t, devKey, &s.cfg.Key.PublicKey, []byte{1, 2, 3, 4, 5, 6, 7, 8})
		out, _, err := s.cfg.HandleClientHello(t0, testAddr, d.hello(nil))
		if err != nil {
			t.Fatal(err)
		}
		out, hs, err := s.cfg.HandleClientHello(t0, testAddr, d.hello(d.cookie(out[0])))
		if err != nil {
			t.Fatal(err)
		}
		if mode%2 == 1 {
			recs := d.clientFlight(out[0])
			if _, _, err := hs.HandleDatagram(t0, testAddr, bytes.Join(recs[:2], nil)); err != nil {
				t.Fatal(err)
			}
		}
		// Split the input into up to four datagrams.
		for len(data) > 0 {
			n := min(len(data), 1+len(data)/4+int(mode)%7)
			_, _, _ = hs.HandleDatagram(t0, testAddr, data[:n])
			data = data[n:]
			if len(hs.early) > serverMaxEarly {
				t.Fatalf("%d early records held", len(hs.early))
			}
			if hs.reasm != nil && len(hs.reasm.pending) > hs.reasm.maxAhead()+1 {
				t.Fatalf("%d messages under reassembly", len(hs.reasm.pending))
			}
		}
		_, _ = hs.HandleTimeout(t0.Add(DefaultMaxTimeout))
	})
}
