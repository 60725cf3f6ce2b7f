package cloud

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkSSEParse parses and decodes Wick-shaped events, as a stream
// does for each event it receives.
func BenchmarkSSEParse(b *testing.B) {
	const one = "id: 123456\nevent: sensor/temp\ndata: {\"data\":\"21.5\",\"ttl\":60,\"published_at\":\"2026-01-02T03:04:05.000Z\",\"coreid\":\"1d002a000547343232363230\"}\n\n"
	const n = 1000
	in := bytes.Repeat([]byte(one), n)
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	r := bytes.NewReader(in)
	p := newSSEParser(r, nil)
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			r.Reset(in)
			p = newSSEParser(r, nil)
		}
		ev, err := p.next()
		if err != nil && err != io.EOF {
			b.Fatal(err)
		}
		_ = decodeEvent(ev.id, ev)
	}
}
