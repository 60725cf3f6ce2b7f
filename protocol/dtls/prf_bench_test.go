package dtls

import "testing"

// BenchmarkHandshakeKeys derives the master secret, the key block and both
// Finished values, the PRF work of one full handshake.
func BenchmarkHandshakeKeys(b *testing.B) {
	pre := make([]byte, 32)
	cr, sr := make([]byte, RandomLen), make([]byte, RandomLen)
	th := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		ms, err := MasterSecret(pre, cr, sr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := KeyBlock(ms, cr, sr); err != nil {
			b.Fatal(err)
		}
		VerifyData(ms, ClientFinished, th)
		VerifyData(ms, ServerFinished, th)
	}
}
