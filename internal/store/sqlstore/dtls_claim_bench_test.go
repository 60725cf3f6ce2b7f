package sqlstore

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// BenchmarkDTLSSessionSaves measures the saves of running Gen 3 sessions
// (1,000 saved sessions of 200 bytes, each saved again in turn): "replace"
// is the unconditional SaveDTLSSession (device lookup and upsert, what the
// gateway did before its saves were conditional), "claim" the conditional
// ClaimDTLSSession from the state it stored last, "batch256" 256 of those
// in one SaveDTLSSessions (per session: ns/op / 256).
func BenchmarkDTLSSessionSaves(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		const n = 1000
		ids := seedDevices(b, db, n)
		cids := make([][]byte, n)
		last := make([][]byte, n)
		state := func(i, round int) []byte {
			s := make([]byte, 200)
			binary.BigEndian.PutUint64(s, uint64(round))
			binary.BigEndian.PutUint64(s[8:], uint64(i))
			return s
		}
		for i := range cids {
			cids[i] = []byte(fmt.Sprintf("%08x", i))
			last[i] = state(i, 0)
			if err := db.SaveDTLSSession(b.Context(), store.DTLSSession{CID: cids[i], DeviceID: ids[i], State: last[i]}); err != nil {
				b.Fatal(err)
			}
		}
		round := 1
		b.Run("replace", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % n
				last[k] = state(k, round+i)
				if err := db.SaveDTLSSession(b.Context(), store.DTLSSession{CID: cids[k], DeviceID: ids[k], State: last[k],
					Addr: "198.51.100.1:5684"}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			round += i
		})
		b.Run("claim", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % n
				next := state(k, round+i)
				ok, err := db.ClaimDTLSSession(b.Context(), store.DTLSSession{CID: cids[k], DeviceID: ids[k], State: next,
					Addr: "198.51.100.1:5684"}, last[k])
				if err != nil || !ok {
					b.Fatalf("claim: %v, %v", ok, err)
				}
				last[k] = next
				i++
			}
			round += i
		})
		b.Run("batch256", func(b *testing.B) {
			const size = 256
			ss := make([]store.DTLSSession, size)
			old := make([][]byte, size)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for j := range ss {
					k := (i*size + j) % n
					ss[j] = store.DTLSSession{CID: cids[k], DeviceID: ids[k], State: state(k, round+i), Addr: "198.51.100.1:5684"}
					old[j] = last[k]
				}
				saved, err := db.SaveDTLSSessions(b.Context(), ss, old)
				if err != nil {
					b.Fatal(err)
				}
				for j, ok := range saved {
					if !ok {
						b.Fatalf("batch %d: session %d not saved", i, j)
					}
					last[(i*size+j)%n] = ss[j].State
				}
				i++
			}
		})
	})
}
