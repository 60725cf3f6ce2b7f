package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// listState reads a product's list state or fails the test.
func listState(t *testing.T, db *DB, productID int64) store.ProductDeviceList {
	t.Helper()
	l, err := db.ProductDeviceListState(t.Context(), productID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestProductDeviceListVersion checks which writes move a product's order
// version and count (migration 0014): joining, leaving and the sort and
// filter columns do; presence, describes and notes do not.
func TestProductDeviceListVersion(t *testing.T) {
	listDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		const p, q = 7001, 7002
		const id = "e00fce6800000000000000b1"
		if l := listState(t, db, p); l != (store.ProductDeviceList{}) {
			t.Fatalf("state of an empty product = %+v", l)
		}
		if _, err := db.ProvisionDevice(ctx, id, store.KeyRSA, make([]byte, 162), p); err != nil {
			t.Fatal(err)
		}
		last := listState(t, db, p)
		if last.Devices != 1 || last.Version == 0 {
			t.Fatalf("after provisioning into the product: %+v", last)
		}
		update := func(f func(d *store.Device)) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				d, err := db.DeviceByID(ctx, id)
				if err != nil {
					return err
				}
				f(d)
				return db.UpdateDevice(ctx, d)
			}
		}
		steps := []struct {
			name  string
			moves bool
			write func(ctx context.Context) error
		}{
			{"online", true, func(ctx context.Context) error {
				_, err := db.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n", SessionID: "s1", At: time.Now()})
				return err
			}},
			{"touch", false, func(ctx context.Context) error {
				return db.TouchDevices(ctx, map[string]time.Time{id: time.Now().Add(time.Minute)})
			}},
			{"offline", false, func(ctx context.Context) error {
				_, err := db.SetDeviceOffline(ctx, id, "s1", time.Now())
				return err
			}},
			{"describe", false, func(ctx context.Context) error {
				return db.SetDeviceDescribe(ctx, id, store.Describe{Parts: store.DescribeApplication, Functions: []string{"led"}})
			}},
			{"notes", false, update(func(d *store.Device) { d.Notes = "n" })},
			{"rename", true, update(func(d *store.Device) { d.Name = "Kettle" })},
			{"quarantine", true, update(func(d *store.Device) { d.Quarantined = true })},
			{"same values", false, update(func(d *store.Device) {})},
			{"firmware version", true, func(ctx context.Context) error {
				_, err := db.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n", SessionID: "s2",
					At: time.Now().Add(time.Second), ProductVersion: 3})
				return err
			}},
		}
		for _, st := range steps {
			if err := st.write(ctx); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			l := listState(t, db, p)
			if l.Devices != 1 {
				t.Fatalf("%s: devices = %d; want 1", st.name, l.Devices)
			}
			if moved := l.Version != last.Version; moved != st.moves {
				t.Fatalf("%s: version %d -> %d; want moved %v", st.name, last.Version, l.Version, st.moves)
			}
			if l.Version < last.Version {
				t.Fatalf("%s: version went back from %d to %d", st.name, last.Version, l.Version)
			}
			last = l
		}
		// A move to another product counts on both sides.
		if err := update(func(d *store.Device) { d.ProductID = q })(ctx); err != nil {
			t.Fatal(err)
		}
		if l := listState(t, db, p); l.Devices != 0 || l.Version <= last.Version {
			t.Fatalf("old product after the move: %+v (before %+v)", l, last)
		}
		if l := listState(t, db, q); l.Devices != 1 {
			t.Fatalf("new product after the move: %+v", l)
		}
		before := listState(t, db, q)
		if err := db.DeleteDevice(ctx, id); err != nil {
			t.Fatal(err)
		}
		if l := listState(t, db, q); l.Devices != 0 || l.Version <= before.Version {
			t.Fatalf("after delete: %+v (before %+v)", l, before)
		}
	})
}

// TestProductDeviceKeysMatchSQL checks that sorting and filtering the
// keys in memory gives every page DevicesByProduct gives, for every sort,
// direction and filter.
func TestProductDeviceKeysMatchSQL(t *testing.T) {
	listDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		const p = 7101
		base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		var devs []store.Device
		for i := range 60 {
			d := store.Device{ID: fmt.Sprintf("e00fce68%016x", i*7919%1000), ProductID: p,
				ProductVersion: i % 4, Quarantined: i%5 == 0}
			if i%3 != 0 {
				d.Name = fmt.Sprintf("Dev-%d", i%17)
			}
			if i%4 != 0 { // a quarter never connected; some share a time
				at := base.Add(time.Duration(i%23) * time.Minute)
				d.LastHandshakeAt = &at
			}
			devs = append(devs, d)
		}
		// Another product's device stays out.
		devs = append(devs, store.Device{ID: "e00fce68ffffffffffffffff", ProductID: p + 1})
		if err := db.InsertDevices(ctx, devs); err != nil {
			t.Fatal(err)
		}
		l, keys, err := db.ProductDeviceKeys(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if l.Devices != 60 || len(keys) != 60 {
			t.Fatalf("state %+v with %d keys; want 60", l, len(keys))
		}
		yes, no := true, false
		filters := []store.DeviceFilter{
			{}, {IDContains: "0A"}, {NameContains: "DEV-1"}, {Quarantined: &yes}, {Quarantined: &no},
			{NameContains: "dev", Quarantined: &no}, {IDContains: "zz"},
		}
		for _, base := range filters {
			for _, sort := range []store.DeviceSort{store.SortByLastConnection, store.SortByID, store.SortByFirmwareVersion} {
				for _, asc := range []bool{false, true} {
					f := base
					f.Sort, f.Ascending = sort, asc
					var sel []store.ProductDeviceKey
					for i := range keys {
						if f.Matches(&keys[i]) {
							sel = append(sel, keys[i])
						}
					}
					slices.SortFunc(sel, func(a, b store.ProductDeviceKey) int {
						return store.CompareProductDevices(&a, &b, sort, asc)
					})
					for _, size := range []int{7, 25} {
						for page := 1; (page-1)*size <= len(sel); page++ {
							f.Page = store.Page{Number: page, Size: size}
							got, total, err := db.DevicesByProduct(ctx, p, f)
							if err != nil {
								t.Fatal(err)
							}
							if total != len(sel) {
								t.Fatalf("%+v: total %d; keys give %d", f, total, len(sel))
							}
							lo := min((page-1)*size, len(sel))
							hi := min(lo+size, len(sel))
							var want, gotIDs []string
							for _, k := range sel[lo:hi] {
								want = append(want, k.ID)
							}
							for _, d := range got {
								gotIDs = append(gotIDs, d.ID)
							}
							if !slices.Equal(gotIDs, want) {
								t.Fatalf("%+v: SQL page %v; keys give %v", f, gotIDs, want)
							}
						}
					}
				}
			}
		}
		ids := []string{keys[0].ID, keys[1].ID, "e00fce68ffffffffffffffff", "e00fce68eeeeeeeeeeeeeeee"}
		vs, err := db.ProductDeviceVersions(ctx, p, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 {
			t.Fatalf("versions of 2 product devices, one of another product, one absent: %+v", vs)
		}
		if err := db.InsertDevices(ctx, devs[:1]); err == nil {
			t.Fatal("InsertDevices of an existing ID succeeded")
		}
	})
}

// TestProductDeviceChanges checks the change log of migration 0018: every
// move of a product's order version names its device, in the snapshot of
// the state; a device that left is reported gone and one that changed
// twice once; a move between products is logged on both; and a node more
// than the log's 4,096 changes behind is told to read the product again.
func TestProductDeviceChanges(t *testing.T) {
	listDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		const p, q = 7201, 7202
		changes := func(since int64) (store.ProductDeviceList, []string, []string, bool) {
			t.Helper()
			l, changed, gone, complete, err := db.ProductDeviceChanges(ctx, p, since)
			if err != nil {
				t.Fatal(err)
			}
			// The keys are the devices' as ProductDeviceKeys reads them.
			_, keys, err := db.ProductDeviceKeys(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			byID := make(map[string]store.ProductDeviceKey, len(keys))
			for _, k := range keys {
				byID[k.ID] = k
			}
			checkPageRead(t, db, p, since, keys)
			var ids []string
			for _, k := range changed {
				ids = append(ids, k.ID)
				if byID[k.ID] != k {
					t.Fatalf("changed key %+v; the product holds %+v", k, byID[k.ID])
				}
			}
			slices.Sort(ids)
			slices.Sort(gone)
			return l, ids, gone, complete
		}
		// A product that never had a device: the zero state, complete
		// only for a caller at version 0.
		if l, ch, gone, complete, err := db.ProductDeviceChanges(ctx, p, 0); err != nil || l != (store.ProductDeviceList{}) ||
			ch != nil || gone != nil || !complete {
			t.Fatalf("empty product since 0: %+v %v %v %v %v", l, ch, gone, complete, err)
		}
		if _, _, _, complete, err := db.ProductDeviceChanges(ctx, p, 3); err != nil || complete {
			t.Fatalf("empty product since 3: complete %v, %v", complete, err)
		}
		id := func(i int) string { return fmt.Sprintf("e00fce69%016x", i) }
		var devs []store.Device
		for i := range 5 {
			devs = append(devs, store.Device{ID: id(i), ProductID: p, Name: fmt.Sprintf("Dev-%d", i)})
		}
		if err := db.InsertDevices(ctx, devs); err != nil {
			t.Fatal(err)
		}
		l0, ids, gone, complete := changes(0)
		if !complete || len(ids) != 5 || len(gone) != 0 || l0.Devices != 5 {
			t.Fatalf("since 0: %+v %v gone %v complete %v", l0, ids, gone, complete)
		}
		// Nothing since the current version.
		if l, ids, gone, complete := changes(l0.Version); !complete || ids != nil || gone != nil || l != l0 {
			t.Fatalf("since now: %+v %v %v %v", l, ids, gone, complete)
		}
		rename := func(i int, name string) {
			d, err := db.DeviceByID(ctx, id(i))
			if err != nil {
				t.Fatal(err)
			}
			d.Name = name
			if err := db.UpdateDevice(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		rename(1, "a")
		rename(1, "b")
		if _, err := db.SetDeviceOnline(ctx, id(2), store.DeviceSession{Node: "n", SessionID: "s", At: time.Now(), ProductVersion: 4}); err != nil {
			t.Fatal(err)
		}
		if err := db.TouchDevices(ctx, map[string]time.Time{id(3): time.Now()}); err != nil { // not logged
			t.Fatal(err)
		}
		if err := db.DeleteDevice(ctx, id(4)); err != nil {
			t.Fatal(err)
		}
		d, err := db.DeviceByID(ctx, id(0))
		if err != nil {
			t.Fatal(err)
		}
		d.ProductID = q
		if err := db.UpdateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		l1, ids, gone, complete := changes(l0.Version)
		if !complete || l1.Version != l0.Version+5 || l1.Devices != 3 ||
			!slices.Equal(ids, []string{id(1), id(2)}) || !slices.Equal(gone, []string{id(0), id(4)}) {
			t.Fatalf("after 5 changes: %+v (was %+v) changed %v gone %v complete %v", l1, l0, ids, gone, complete)
		}
		if _, ids, _, complete := changes(l1.Version - 1); !complete || !slices.Equal(ids, nil) {
			t.Fatalf("since the move's version - 1: changed %v complete %v", ids, complete)
		}
		_, changedQ, _, complete, err := db.ProductDeviceChanges(ctx, q, 0)
		if err != nil || !complete || len(changedQ) != 1 || changedQ[0].ID != id(0) {
			t.Fatalf("the product moved into: %+v %v %v", changedQ, complete, err)
		}
		// Past the log's length: the oldest changes are dropped.
		var many []store.Device
		for i := range 4100 {
			many = append(many, store.Device{ID: id(100 + i), ProductID: p})
		}
		if err := db.InsertDevices(ctx, many); err != nil {
			t.Fatal(err)
		}
		if _, _, _, complete := changes(l1.Version); complete {
			t.Fatal("changes since 4,100 versions back: complete")
		}
		l2, ids, _, complete := changes(l1.Version + 4)
		if !complete || len(ids) != 4096 || l2.Version != l1.Version+4100 {
			t.Fatalf("the last 4,096 changes: %d devices, %+v, complete %v", len(ids), l2, complete)
		}
		var n int
		if err := db.r.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM product_device_changes WHERE product_id = ?`), p).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 4096 {
			t.Fatalf("the log holds %d changes of the product; want 4,096", n)
		}
	})
}

// checkPageRead fails the test unless ReadProductDevicePage agrees with
// ProductDeviceChanges, ProductDeviceVersions and DevicesByIDs, asked
// about the product's devices (keys) and one unknown ID, and on
// PostgreSQL with its statements of before (pageStatements).
func checkPageRead(t *testing.T, db *DB, p, since int64, keys []store.ProductDeviceKey) {
	t.Helper()
	ctx := t.Context()
	ids := []string{"ffffffffffffffffffffffff"}
	for _, k := range keys[:min(len(keys), 120)] {
		ids = append(ids, k.ID)
	}
	r, err := db.ReadProductDevicePage(ctx, p, since, ids)
	if err != nil {
		t.Fatal(err)
	}
	l, changed, gone, complete, err := db.ProductDeviceChanges(ctx, p, since)
	if err != nil {
		t.Fatal(err)
	}
	byKey := func(a, b store.ProductDeviceKey) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(changed, byKey)
	slices.SortFunc(r.Changed, byKey)
	slices.Sort(gone)
	slices.Sort(r.Gone)
	if r.State != l || r.Complete != complete || !slices.Equal(r.Changed, changed) || !slices.Equal(r.Gone, gone) {
		t.Fatalf("page read since %d: %+v %v changed %v gone %v; changes: %+v %v %v %v", since,
			r.State, r.Complete, r.Changed, r.Gone, l, complete, changed, gone)
	}
	vs, err := db.ProductDeviceVersions(ctx, p, ids)
	if err != nil {
		t.Fatal(err)
	}
	byID := func(a, b store.DeviceVersion) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(vs, byID)
	slices.SortFunc(r.Versions, byID)
	if !slices.Equal(r.Versions, vs) {
		t.Fatalf("page read versions %v; ProductDeviceVersions %v", r.Versions, vs)
	}
	// The rows: the devices in p logged in the ChangedRows versions after
	// since, as DevicesByIDs reads them.
	var logged []string
	err = db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		logged = append(logged, id)
		return nil
	}, `SELECT DISTINCT device_id FROM product_device_changes WHERE product_id = ? AND version > ? AND version <= ?`,
		p, since, since+store.ChangedRows)
	if err != nil {
		t.Fatal(err)
	}
	want, err := db.DevicesByIDs(ctx, logged)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(d store.VersionedDevice) bool { return d.ProductID != p })
	rowID := func(a, b store.VersionedDevice) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(want, rowID)
	slices.SortFunc(r.Rows, rowID)
	if len(r.Rows) != len(want) {
		t.Fatalf("page read since %d: %d rows; want %d", since, len(r.Rows), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(r.Rows[i], want[i]) {
			t.Fatalf("page read row %+v; DevicesByIDs %+v", r.Rows[i], want[i])
		}
	}
	if db.dialect != dialectPostgres {
		return
	}
	// The statements of before read the same.
	for _, before := range []pageStatements{pageIDsList, pageCustomPlans, pageIDsList | pageCustomPlans} {
		var rb store.ProductDevicePageRead
		if err := db.readProductDevicePageBatch(ctx, &rb, nil, p, since, ids, before); err != nil {
			t.Fatal(err)
		}
		samePageRead(t, fmt.Sprintf("page read since %d, before %b", since, before), nil, nil, r, rb)
	}
}

// BenchmarkProductDeviceHandshakeWrite measures what the product list's
// triggers add to a write that moves a product's order (a handshake:
// SetDeviceOnline with a new time): the same write on a device in a
// product (order version and change log, migrations 0014 and 0018) and on
// a device in none (no trigger work).
func BenchmarkProductDeviceHandshakeWrite(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		ctx := b.Context()
		var devs []store.Device
		for i := range 1000 {
			devs = append(devs, store.Device{ID: fmt.Sprintf("e00fce6a%016x", i), ProductID: 7301},
				store.Device{ID: fmt.Sprintf("e00fce6b%016x", i)})
		}
		if err := db.InsertDevices(ctx, devs); err != nil {
			b.Fatal(err)
		}
		base := time.Now()
		for _, c := range []struct{ name, prefix string }{{"in-product", "e00fce6a"}, {"no-product", "e00fce6b"}} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					_, err := db.SetDeviceOnline(ctx, fmt.Sprintf("%s%016x", c.prefix, i%1000),
						store.DeviceSession{Node: "n", SessionID: "s", At: base.Add(time.Duration(i) * time.Millisecond)})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// samePageRead fails the test unless a and b hold the same access and
// reads, in any order.
func samePageRead(t *testing.T, what string, aa, ab *store.ProductAccess, a, b store.ProductDevicePageRead) {
	t.Helper()
	if !reflect.DeepEqual(aa, ab) {
		t.Fatalf("%s: access %+v; before %+v", what, aa, ab)
	}
	for _, r := range []*store.ProductDevicePageRead{&a, &b} {
		slices.SortFunc(r.Changed, func(x, y store.ProductDeviceKey) int { return strings.Compare(x.ID, y.ID) })
		slices.Sort(r.Gone)
		slices.SortFunc(r.Versions, func(x, y store.DeviceVersion) int { return strings.Compare(x.ID, y.ID) })
		slices.SortFunc(r.Owners, func(x, y store.DeviceOwnerName) int {
			return strings.Compare(x.OwnerID+"/"+x.CustomerID, y.OwnerID+"/"+y.CustomerID)
		})
		slices.SortFunc(r.Rows, func(x, y store.VersionedDevice) int { return strings.Compare(x.ID, y.ID) })
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%s: read %+v\nbefore %+v", what, a, b)
	}
}

// TestProductDevicePageStatements checks on PostgreSQL that the page
// statements of today (the IDs in one array, the changes planned once)
// read what those of before (pageIDsList, pageCustomPlans) read, for
// random pages (unknown, repeated and other products' IDs among them) of
// random lengths, since versions near and far, a product with moves in,
// out and across, and a user refused.
func TestProductDevicePageStatements(t *testing.T) {
	db := openPostgresSchema(t)
	defer db.Close()
	ctx := t.Context()
	f := seedProductFleet(t, db, 1000)
	p := f.product.ID
	other := &store.User{Username: "other@example.com", PasswordHash: "x"}
	if err := db.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	elsewhere := []store.Device{{ID: "e00fce6cffffffffffffff01", ProductID: p + 1}, {ID: "e00fce6cffffffffffffff02"}}
	if err := db.InsertDevices(ctx, elsewhere); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(15, 2))
	// Changes logged: handshakes, renames, deletes, moves out and in.
	for i := range 60 {
		id := f.ids[rng.IntN(len(f.ids))]
		var err error
		switch i % 6 {
		case 0, 1, 2:
			_, err = db.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n", SessionID: strconv.Itoa(i),
				At: time.Now().Add(time.Duration(i) * time.Second), ProductVersion: i})
		case 3:
			var d *store.Device
			if d, err = db.DeviceByID(ctx, id); err == nil {
				d.Name = "renamed-" + strconv.Itoa(i)
				err = db.UpdateDevice(ctx, d)
			}
		case 4:
			err = db.DeleteDevice(ctx, id)
		case 5:
			var d *store.Device
			if d, err = db.DeviceByID(ctx, elsewhere[i/6%2].ID); err == nil {
				d.ProductID = p + int64(i/6%2) // in, then back out
				err = db.UpdateDevice(ctx, d)
			}
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	l := listState(t, db, p)
	sinces := []int64{l.Version, l.Version - 1, l.Version - 5, l.Version - 40, l.Version - 61, 0, 1, l.Version + 3}
	for i := range 60 {
		page := make([]string, rng.IntN(121))
		for j := range page {
			switch rng.IntN(20) {
			case 0:
				page[j] = "ffffffffffffffffffffffff"
			case 1:
				page[j] = elsewhere[rng.IntN(2)].ID
			default:
				page[j] = f.ids[rng.IntN(len(f.ids))]
			}
		}
		since := sinces[i%len(sinces)]
		user := f.userID
		if i%10 == 9 {
			user = other.ID
		}
		a, r, err := db.ReadProductDevicePageFor(ctx, f.product, user, p, since, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, before := range []pageStatements{pageIDsList, pageCustomPlans, pageIDsList | pageCustomPlans} {
			ab, rb, err := db.readProductDevicePageFor(ctx, f.product, user, p, since, page, before)
			if err != nil {
				t.Fatal(err)
			}
			samePageRead(t, fmt.Sprintf("page %d (%d IDs since %d, before %b)", i, len(page), since, before), a, ab, r, rb)
		}
	}
}
