package sqlstore

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// BenchmarkDTLSSessionSaves measures the saves of running Gen 3 sessions
// (4,000 saved sessions of 200 bytes, each saved again in turn): "replace"
// is the unconditional SaveDTLSSession (device lookup and upsert, what the
// gateway did before its saves were conditional), "claim" the conditional
// ClaimDTLSSession from the state it stored last, "batchN" N of those in
// one transaction (ns/session): "each" one statement per session (SQLite's
// SaveDTLSSessions, and PostgreSQL's before), "bulk" one statement per
// batch (PostgreSQL's SaveDTLSSessions).
func BenchmarkDTLSSessionSaves(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		const n = 4000
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
		// Batches of 256 and 2,000 sessions, with the bulk statements
		// (SaveDTLSSessions) and, "each", with one statement per session
		// (saveDTLSSessionsEach, what SaveDTLSSessions did before).
		for _, size := range []int{256, 2000} {
			for _, mode := range []string{"each", "bulk"} {
				save := db.saveDTLSSessionsEach
				if mode == "bulk" {
					if db.dialect != dialectPostgres {
						continue // SQLite saves each (dtls_session_batch.go)
					}
					save = db.saveDTLSSessionsBulk
				}
				b.Run(fmt.Sprintf("batch%d/%s", size, mode), func(b *testing.B) {
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
						saved, err := save(b.Context(), ss, old)
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
					round += i
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*size), "ns/session")
				})
			}
		}
	})
}
