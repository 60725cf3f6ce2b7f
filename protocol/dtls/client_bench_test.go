package dtls

import "testing"

// BenchmarkClientServerHandshake measures one full Gen 3 handshake with both
// state machines in memory: the cookie round, both flights and both
// Finished, with a device CID. It includes two signatures, two
// verifications and two ECDH exchanges.
func BenchmarkClientServerHandshake(b *testing.B) {
	devKey := mustP256(b)
	s := newTestServer(b, devKey)
	s.cfg.Signer = nil
	b.ReportAllocs()
	for b.Loop() {
		p := newPair(b, s, devKey, []byte{1, 2, 3, 4, 5, 6, 7, 8})
		if err := p.run(); err != nil {
			b.Fatal(err)
		}
	}
}
