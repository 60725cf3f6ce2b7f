package sqlstore

import (
	"context"
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
// and 0020
// narrowed, for the benchmarks' "before" side.
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
// as the devices of a Gen 3 server that is about to shut down. before
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
	b.Logf("%d online devices in %v", n, time.Since(start).Round(time.Millisecond))
	ids := f.ids
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return offlineFleet{db: db, ids: ids}
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
// writeTempStorePragma, with setDevicesOfflineBefore, alternating.
func BenchmarkSetDevicesOffline(b *testing.B) {
	fleets := [2]offlineFleet{seedOfflineFleet(b, false), seedOfflineFleet(b, true)}
	ways := [2]func(context.Context, []store.DeviceOffline) ([]bool, error){
		fleets[0].db.SetDevicesOffline, fleets[1].db.setDevicesOfflineBefore,
	}
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
		if i >= chunks {
			fleets[k].onlineAgain(b, "node-a", ids)
		}
		at = at.Add(time.Millisecond)
		offs = offs[:0]
		for _, id := range ids {
			offs = append(offs, store.DeviceOffline{ID: id, SessionID: offlineSession(id), At: at})
		}
	}, func(k, i int) int {
		applied, err := ways[k](b.Context(), offs)
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
}

// setDevicesOfflineBefore is SetDevicesOffline on SQLite as it was before
// it assigned row versions itself: the devices_row_version_update trigger
// gave each row its version, with a second update of the row.
func (db *DB) setDevicesOfflineBefore(ctx context.Context, offs []store.DeviceOffline) ([]bool, error) {
	applied := make([]bool, len(offs))
	index := make(map[string]int, len(offs))
	batch := make(map[string][2]any, len(offs))
	for i, o := range offs {
		if _, dup := index[o.ID]; dup || o.SessionID == "" {
			continue
		}
		index[o.ID] = i
		batch[o.ID] = [2]any{o.SessionID, toMS(o.At)}
	}
	obj, err := json.Marshal(batch)
	if err != nil {
		return nil, err
	}
	done, err := db.collectStrings(ctx, db.w, `UPDATE devices SET online = FALSE, node = '', session_id = '',
			last_heard = CASE WHEN last_heard IS NULL OR last_heard < json_extract(j.value, '$[1]')
				THEN json_extract(j.value, '$[1]') ELSE last_heard END
		FROM json_each(?) AS j
		WHERE devices.id = j.key AND devices.session_id = json_extract(j.value, '$[0]')
		RETURNING devices.id`, string(obj))
	if err != nil {
		return nil, err
	}
	for _, id := range done {
		applied[index[id]] = true
	}
	return applied, nil
}

// BenchmarkApplyPresenceFleet measures the onlines of a reconnect storm:
// batches of 256 devices of the 100,000-device fleet of
// BenchmarkSetDevicesOffline, all offline at first, coming online with a
// new session in their product (which moves the product list's version:
// the handshake time is a sort key) in one ApplyPresence. Now runs on
// today's schema, before on a fleet as before migrations 0019 and 0020
// and writeTempStorePragma, with applyPresenceBefore, alternating.
func BenchmarkApplyPresenceFleet(b *testing.B) {
	fleets := [2]offlineFleet{seedOfflineFleet(b, false), seedOfflineFleet(b, true)}
	for _, f := range fleets {
		if _, err := f.db.w.ExecContext(b.Context(), `UPDATE devices SET online = FALSE, node = '', session_id = ''`); err != nil {
			b.Fatal(err)
		}
	}
	var productID int64
	if err := fleets[0].db.w.QueryRowContext(b.Context(), `SELECT product_id FROM devices LIMIT 1`).Scan(&productID); err != nil {
		b.Fatal(err)
	}
	ways := [2]func(context.Context, []store.PresenceUpdate) ([]bool, error){
		fleets[0].db.ApplyPresence, fleets[1].db.applyPresenceBefore,
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
		if _, err := ways[k](b.Context(), ups); err != nil {
			b.Fatal(err)
		}
		return len(ups)
	})
}

// applyPresenceBefore is ApplyPresence as it was before it assigned row
// versions itself.
func (db *DB) applyPresenceBefore(ctx context.Context, updates []store.PresenceUpdate) ([]bool, error) {
	return db.ApplyPresence(ctx, updates)
}
