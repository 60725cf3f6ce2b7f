package sqlstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// TestDTLSSessionBulkAsEach: on PostgreSQL the bulk statements of
// SaveDTLSSessions save exactly what one statement per session does
// (saveDTLSSessionsEach, SQLite's form and PostgreSQL's before): random
// batches of replaces from current and stale states, new sessions on free
// and taken connection IDs, of present and absent devices, with a CID
// repeated in a batch, applied to two stores alike, give the same saved
// flags and the same rows.
func TestDTLSSessionBulkAsEach(t *testing.T) {
	bulk, each := openPostgresSchema(t), openPostgresSchema(t)
	defer bulk.Close()
	defer each.Close()
	ctx := t.Context()
	const devices, cids = 6, 24
	key := make([]byte, 91)
	for i := range devices - 1 { // the last device is absent
		for _, db := range []*DB{bulk, each} {
			key[0] = byte(i)
			if _, err := db.ProvisionDevice(ctx, devName(i), store.KeyECC, key, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	rng := rand.New(rand.NewPCG(15, 2026))
	// current holds each CID's state as the "each" store has it.
	current := map[string][]byte{}
	for batchNo := range 40 {
		n := 1 + rng.IntN(30)
		ss := make([]store.DTLSSession, n)
		old := make([][]byte, n)
		for i := range ss {
			c := fmt.Appendf(nil, "cid-%02d", rng.IntN(cids))
			ss[i] = store.DTLSSession{CID: c, DeviceID: devName(rng.IntN(devices)),
				State: fmt.Appendf(nil, "state-%d-%d", batchNo, i), Addr: fmt.Sprintf("192.0.2.1:%d", i)}
			switch r := rng.IntN(4); {
			case r == 0:
				old[i] = nil // new
			case r == 1:
				old[i] = []byte("stale")
			default:
				// Current: the stored state, or that of an earlier
				// session of the CID in this batch.
				old[i] = current[string(c)]
				for k := i - 1; k >= 0; k-- {
					if string(ss[k].CID) == string(c) && rng.IntN(2) == 0 {
						old[i] = ss[k].State
						break
					}
				}
			}
		}
		got, err := bulk.saveDTLSSessionsBulk(ctx, ss, old)
		if err != nil {
			t.Fatal(err)
		}
		want, err := each.saveDTLSSessionsEach(ctx, ss, old)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("batch %d: bulk saved %v, one by one %v", batchNo, got, want)
		}
		for i, ok := range want {
			if ok {
				current[string(ss[i].CID)] = ss[i].State
			}
		}
		for c := range cids {
			cid := fmt.Appendf(nil, "cid-%02d", c)
			a, errA := bulk.DTLSSession(ctx, cid)
			b, errB := each.DTLSSession(ctx, cid)
			if fmt.Sprint(errA) != fmt.Sprint(errB) || (errA == nil && (string(a.State) != string(b.State) ||
				a.DeviceID != b.DeviceID || a.Addr != b.Addr)) {
				t.Fatalf("batch %d, %s: bulk %+v (%v), one by one %+v (%v)", batchNo, cid, a, errA, b, errB)
			}
		}
	}
	if len(current) == 0 {
		t.Fatal("no session saved")
	}
}

// devName is the ID of test device i.
func devName(i int) string { return fmt.Sprintf("0123456789abcdef0123%04x", i) }
