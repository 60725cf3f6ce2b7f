package api

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// TestProductOrderApply checks the in-memory product order against
// sorting and filtering all the keys from scratch, after random batches
// of joins, leaves and changes of every size (one device by binary
// search, many by a pass), for every sort order and a set of filters, on
// pages from both ends.
func TestProductOrderApply(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"", "alpha", "Alpha-2", "beta", "kettle", "al", "a_b", "ünï", "aa\x00a", "lph"}
	key := func(id string) store.ProductDeviceKey {
		k := store.ProductDeviceKey{ID: id, NameKey: names[r.IntN(len(names))], ProductVersion: r.IntN(4),
			Quarantined: r.IntN(5) == 0}
		if r.IntN(4) != 0 {
			k.LastHandshake, k.HasHandshake = int64(r.IntN(50)), true
		}
		if k.NameKey != "" && r.IntN(2) == 0 {
			k.NameKey += fmt.Sprint(r.IntN(30))
		}
		return k
	}
	all := map[string]store.ProductDeviceKey{}
	var initial []store.ProductDeviceKey
	for i := range 300 {
		k := key(fmt.Sprintf("%06x", i*7919%100000))
		all[k.ID] = k
		initial = append(initial, k)
	}
	l := store.ProductDeviceList{Devices: int64(len(all)), Version: 1}
	o := newProductOrder(l, initial)
	yes, no := true, false
	filters := []store.DeviceFilter{
		{}, {NameContains: "al"}, {NameContains: "ALPHA"}, {NameContains: "a\x00"}, {NameContains: "2"},
		{IDContains: "0"}, {IDContains: "1a"}, {Quarantined: &yes}, {Quarantined: &no, NameContains: "a"},
		{IDContains: "f", NameContains: "e", Quarantined: &no}, {NameContains: "zzz"},
	}
	check := func(step string) {
		t.Helper()
		keys := make([]store.ProductDeviceKey, 0, len(all))
		for _, k := range all {
			keys = append(keys, k)
		}
		for _, f := range filters {
			for _, sort := range []store.DeviceSort{store.SortByLastConnection, store.SortByID, store.SortByFirmwareVersion} {
				for _, asc := range []bool{false, true} {
					var want []string
					sel := slices.Clone(keys)
					slices.SortFunc(sel, func(a, b store.ProductDeviceKey) int { return store.CompareProductDevices(&a, &b, sort, asc) })
					for i := range sel {
						if f.Matches(&sel[i]) {
							want = append(want, sel[i].ID)
						}
					}
					for _, size := range []int{7, 100} {
						for from := 0; from <= len(want)+size; from += size {
							got, total := o.page(orderKey{sort, asc}, &f, from, size)
							w := want[min(from, len(want)):min(from+size, len(want))]
							if total != len(want) || !slices.Equal(got, w) {
								t.Fatalf("%s: %+v sort %v asc %v from %d: %v (total %d); want %v (total %d)",
									step, f, sort, asc, from, got, total, w, len(want))
							}
						}
					}
				}
			}
		}
	}
	check("initial")
	next := 300
	for step := range 60 {
		n := 1 + r.IntN(3)
		if step%4 == 3 {
			n = smallChange + r.IntN(80)
		}
		touched := map[string]bool{}
		ids := make([]string, 0, len(all))
		for id := range all {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for range n {
			switch op := r.IntN(3); {
			case op == 0 || len(ids) == 0: // joins
				id := fmt.Sprintf("%06x", next*7919%100000+100000)
				next++
				all[id] = key(id)
				touched[id] = true
			case op == 1: // leaves
				id := ids[r.IntN(len(ids))]
				delete(all, id)
				touched[id] = true
			default: // changes
				id := ids[r.IntN(len(ids))]
				if _, ok := all[id]; ok {
					all[id] = key(id)
					touched[id] = true
				}
			}
		}
		if r.IntN(5) == 0 { // a device that joined and left between two reads
			touched["ffffff"] = true
		}
		var changed []store.ProductDeviceKey
		var gone []string
		for id := range touched {
			if k, ok := all[id]; ok {
				changed = append(changed, k)
			} else {
				gone = append(gone, id)
			}
		}
		l.Version += int64(len(touched))
		l.Devices = int64(len(all))
		if !o.apply(l, changed, gone) {
			t.Fatalf("step %d: apply refused", step)
		}
		check(fmt.Sprintf("step %d (%d changes)", step, len(touched)))
	}
	// A count that does not match is refused, changing nothing.
	before := o.at()
	if o.apply(store.ProductDeviceList{Devices: l.Devices + 5, Version: l.Version + 1}, nil, nil) || o.at() != before {
		t.Fatal("apply took a state whose count does not match")
	}
}

// TestTextIndexCompacts checks that renaming every slot over and over
// keeps the index's buffer bounded and its matches exact.
func TestTextIndexCompacts(t *testing.T) {
	var ti textIndex
	for round := range 50 {
		for s := range int32(100) {
			ti.set(s, fmt.Sprintf("n%d-%d", s, round))
		}
		ti.compact()
		if len(ti.slot) > 300 {
			t.Fatalf("round %d: %d entries for 100 slots", round, len(ti.slot))
		}
		m := ti.matching(fmt.Sprintf("-%d", round), 100)
		if m.count() != 100 {
			t.Fatalf("round %d: %d slots match the round; want 100", round, m.count())
		}
		if round > 0 && ti.matching(fmt.Sprintf("-%d", round-1), 100).count() != 0 {
			t.Fatalf("round %d: an old name still matches", round)
		}
	}
	ti.remove(3)
	if m := ti.matching("n3-", 100); m.has(3) {
		t.Fatal("a removed slot matches")
	}
}

// BenchmarkProductOrderFilter measures a filtered page of 25 over an order
// of 100,000 devices in memory (no store): the index scans, the bitsets
// and the walk of the order.
func BenchmarkProductOrderFilter(b *testing.B) {
	const n = 100000
	keys := make([]store.ProductDeviceKey, n)
	for i := range keys {
		keys[i] = store.ProductDeviceKey{ID: fmt.Sprintf("d0%022x", i), NameKey: fmt.Sprintf("dev-%d", i),
			ProductVersion: i % 5, Quarantined: i%50 == 0, LastHandshake: int64(i * 7919 % n), HasHandshake: i%10 != 0}
	}
	o := newProductOrder(store.ProductDeviceList{Devices: n, Version: 1}, keys)
	yes := true
	for _, c := range []struct {
		name string
		f    store.DeviceFilter
		from int
	}{
		{"name-dev-99", store.DeviceFilter{NameContains: "dev-99"}, 0},
		{"name-dev-99-last", store.DeviceFilter{NameContains: "dev-99"}, 1100},
		{"name-dev-1-by-firmware", store.DeviceFilter{NameContains: "dev-1", Sort: store.SortByFirmwareVersion}, 4900},
		{"name-none", store.DeviceFilter{NameContains: "zz"}, 0},
		{"id-ab1", store.DeviceFilter{IDContains: "ab1"}, 0},
		{"quarantined", store.DeviceFilter{Quarantined: &yes}, 475},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.page(orderKey{c.f.Sort, c.f.Ascending}, &c.f, c.from, 25)
			}
		})
	}
}
