package sqlstore

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// offlineFleet is a SQLite file of a Gen 3 product fleet whose devices
// are all online (seedOfflineFleet).
type offlineFleet struct {
	db  *DB
	ids []string // shuffled: chunk k is ids[k*size:(k+1)*size]
}

// offlineSession is the session seedOfflineFleet and onlineAgain give
// device id.
func offlineSession(id string) string { return "s-" + id }

// indexesBefore0019and0020 puts back the indexes that migrations 0019
// and 0020 narrowed, for the benchmarks' "before" side.
const indexesBefore0019and0020 = `DROP INDEX devices_owner_list;
CREATE INDEX devices_owner_list ON devices (owner_id, last_handshake_at);
DROP INDEX devices_customer_list;
CREATE INDEX devices_customer_list ON devices (customer_id, last_handshake_at);
DROP INDEX devices_node;
CREATE INDEX devices_node ON devices (node);
DROP INDEX devices_owner_version;
CREATE INDEX devices_owner_version ON devices (owner_id, row_version);
DROP INDEX devices_customer_version;
CREATE INDEX devices_customer_version ON devices (customer_id, row_version);`

// seedOfflineFleet fills a SQLite file with the product fleet of the
// product list benchmarks (100,000 devices, WICK_BENCH_OFFLINE_DEVICES
// changes it), each with a P-256 key, a describe and a session on node-a,
// as the devices of a Gen 3 server that is about to shut down; with
// WICK_BENCH_OFFLINE_OWNED set, all owned by one user and in no product,
// as wick sim's. before
// gives it the indexes of before migrations 0019 and 0020, and its write
// connection the temporary files of before writeTempStorePragma.
func seedOfflineFleet(b *testing.B, before bool) offlineFleet {
	b.Helper()
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("WICK_BENCH_OFFLINE_DEVICES")); err == nil && v > 0 {
		n = v
	}
	db := openSQLiteFile(b)
	b.Cleanup(func() { db.Close() })
	ctx := b.Context()
	if before {
		if _, err := db.w.ExecContext(ctx, indexesBefore0019and0020+"PRAGMA temp_store = DEFAULT;"); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	f := seedProductFleet(b, db, n)
	_, err := db.w.ExecContext(ctx, `UPDATE devices SET public_key = randomblob(91), key_algorithm = ?,
		functions = '["led","reset","setTarget"]',
		variables = '{"count":"int32","label":"string","on":"bool","temp":"double"}',
		system_version = '6.2.1', status = 'normal', system_module_version = 6201, last_ip = '192.0.2.17',
		online = TRUE, node = 'node-a', session_id = 's-' || id, last_heard = ?`,
		store.KeyECC, toMS(time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("WICK_BENCH_OFFLINE_OWNED") != "" {
		// As wick sim's devices: all claimed by one user, in no product.
		_, err := db.w.ExecContext(ctx, `UPDATE devices SET owner_id = ?, customer_id = '', product_id = 0`, f.userID)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d online devices in %v", n, time.Since(start).Round(time.Millisecond))
	ids := f.ids
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return offlineFleet{db: db, ids: ids}
}

// withFleets runs fn on a fleet of today (fleets[0]) and one of before
// (fleets[1]), each with an empty WAL and nothing left for the kernel to
// write, twice: as sub-benchmarks now-seeded-first and
// before-seeded-first, each on its own pair. Whichever fleet of a pair
// was seeded first was up to 50% slower than the other, also with the
// same schema (WICK_BENCH_SAME_SCHEMA=1): the mean of the two cancels
// that out. The fleets are seeded once, before the sub-benchmarks, which
// the testing package runs more than once.
func withFleets(b *testing.B, fn func(b *testing.B, fleets [2]offlineFleet)) {
	var pairs [2][2]offlineFleet
	for first := range pairs {
		for _, k := range []int{first, 1 - first} {
			pairs[first][k] = seedOfflineFleet(b, k == 1 && os.Getenv("WICK_BENCH_SAME_SCHEMA") == "")
		}
	}
	for first, name := range []string{"now-seeded-first", "before-seeded-first"} {
		b.Run(name, func(b *testing.B) {
			for _, f := range pairs[first] {
				if _, err := f.db.w.ExecContext(b.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					b.Fatal(err)
				}
			}
			syscall.Sync()
			fn(b, pairs[first])
		})
	}
}

// onlineAgain puts the devices back online on node with their sessions.
func (f offlineFleet) onlineAgain(b *testing.B, node string, ids []string) {
	b.Helper()
	list, err := json.Marshal(ids)
	if err != nil {
		b.Fatal(err)
	}
	_, err = f.db.w.ExecContext(b.Context(), `UPDATE devices SET online = TRUE, node = ?, session_id = 's-' || devices.id
		FROM json_each(?) AS j WHERE devices.id = j.value`, node, string(list))
	if err != nil {
		b.Fatal(err)
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// alternate runs one write of each side per iteration, in alternating
// order, and reports each side's wall and process CPU time per row:
// us/row and cpu-us/row for now, base-us/row and base-cpu-us/row for
// before. write does side k's (0 now, 1 before) iteration i and returns
// how many rows it wrote; prepare, outside the timer, readies it.
func alternate(b *testing.B, prepare func(k, i int), write func(k, i int) int) {
	var took, cpu [2]time.Duration
	var rows [2]int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range 2 {
			k := (i + j) % 2
			b.StopTimer()
			prepare(k, i)
			b.StartTimer()
			c0, t0 := processCPU(b), time.Now()
			rows[k] += write(k, i)
			took[k] += time.Since(t0)
			cpu[k] += processCPU(b) - c0
		}
	}
	b.StopTimer()
	for k, unit := range []string{"", "base-"} {
		b.ReportMetric(float64(took[k].Microseconds())/float64(rows[k]), unit+"us/row")
		b.ReportMetric(float64(cpu[k].Microseconds())/float64(rows[k]), unit+"cpu-us/row")
	}
}

// BenchmarkSetDevicesOffline measures a shutdown's offlines: chunks of
// 2,000 devices of a 100,000-device fleet (random across it, as a
// shutdown's sessions are) marked offline by SetDevicesOffline, each
// chunk put back online outside the timer. Now runs on today's schema,
// before on a fleet as before migrations 0019 and 0020 and
// writeTempStorePragma, alternating.
func BenchmarkSetDevicesOffline(b *testing.B) {
	withFleets(b, func(b *testing.B, fleets [2]offlineFleet) {
		const size = 2000
		chunks := len(fleets[0].ids) / size
		at := time.Now()
		chunk := func(k, i int) []string {
			c := i % chunks
			return fleets[k].ids[c*size : (c+1)*size]
		}
		var offs []store.DeviceOffline
		alternate(b, func(k, i int) {
			ids := chunk(k, i)
			fleets[k].onlineAgain(b, "node-a", ids)
			at = at.Add(time.Millisecond)
			offs = offs[:0]
			for _, id := range ids {
				offs = append(offs, store.DeviceOffline{ID: id, SessionID: offlineSession(id), At: at})
			}
		}, func(k, i int) int {
			applied, err := fleets[k].db.SetDevicesOffline(b.Context(), offs)
			if err != nil {
				b.Fatal(err)
			}
			for x, ok := range applied {
				if !ok {
					b.Fatalf("device %s not marked offline", offs[x].ID)
				}
			}
			return len(offs)
		})
	})
}

// BenchmarkApplyPresenceFleet measures the onlines of a reconnect storm:
// batches of 256 devices of the 100,000-device fleet of
// BenchmarkSetDevicesOffline, all offline at first, coming online with a
// new session in their product (which moves the product list's version:
// the handshake time is a sort key) in one ApplyPresence. Now runs on
// today's schema, before on a fleet as before migrations 0019 and 0020
// and writeTempStorePragma, alternating.
func BenchmarkApplyPresenceFleet(b *testing.B) {
	withFleets(b, func(b *testing.B, fleets [2]offlineFleet) {
		for _, f := range fleets {
			if _, err := f.db.w.ExecContext(b.Context(), `UPDATE devices SET online = FALSE, node = '', session_id = ''`); err != nil {
				b.Fatal(err)
			}
		}
		var productID int64
		if err := fleets[0].db.w.QueryRowContext(b.Context(), `SELECT product_id FROM devices LIMIT 1`).Scan(&productID); err != nil {
			b.Fatal(err)
		}
		const size = 256
		batches := len(fleets[0].ids) / size
		at := time.Now()
		ups := make([]store.PresenceUpdate, size)
		alternate(b, func(k, i int) {
			c := i % batches
			at = at.Add(time.Millisecond)
			for x, id := range fleets[k].ids[c*size : (c+1)*size] {
				ups[x] = store.PresenceUpdate{DeviceID: id, Online: &store.DeviceSession{
					Node: "node-b", SessionID: "r" + strconv.Itoa(i) + "-" + id, IP: "192.0.2.18", At: at,
					PlatformID: 12, ProductID: productID, ProductVersion: x % 5, SystemModuleVersion: 6201,
				}}
			}
		}, func(k, i int) int {
			if _, err := fleets[k].db.ApplyPresence(b.Context(), ups); err != nil {
				b.Fatal(err)
			}
			return len(ups)
		})
	})
}

// BenchmarkResetNodeBatch measures a start's reset of the devices a node
// held when it stopped without marking them offline: ResetNodeBatch of
// 2,000 (the gateway's chunk) at a time on the 100,000-device fleet of
// BenchmarkSetDevicesOffline, all online on the node, put back online
// outside the timer when none is left. Now runs on today's schema, before
// on a fleet as before migrations 0019 and 0020 and writeTempStorePragma,
// alternating.
func BenchmarkResetNodeBatch(b *testing.B) {
	withFleets(b, func(b *testing.B, fleets [2]offlineFleet) {
		const size = 2000
		var left [2]int
		alternate(b, func(k, i int) {
			if left[k] < size {
				fleets[k].onlineAgain(b, "node-a", fleets[k].ids)
				left[k] = len(fleets[k].ids)
			}
		}, func(k, i int) int {
			ids, err := fleets[k].db.ResetNodeBatch(b.Context(), "node-a", time.Now(), size)
			if err != nil || len(ids) != min(size, left[k]) {
				b.Fatalf("reset %d devices (%v); want %d", len(ids), err, min(size, left[k]))
			}
			left[k] -= len(ids)
			return len(ids)
		})
	})
}
