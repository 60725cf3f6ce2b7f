package bus

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestRing(t *testing.T) {
	const maxEvents = 8
	tests := []struct {
		name     string
		maxBytes int64
		publish  int
		after    uint64
		max      int
		filter   Filter
		age      time.Duration // how long after publishing we ask
		want     []uint64
	}{
		{name: "all", maxBytes: 1 << 20, publish: 5, max: 100, want: []uint64{1, 2, 3, 4, 5}},
		{name: "after", maxBytes: 1 << 20, publish: 5, after: 3, max: 100, want: []uint64{4, 5}},
		{name: "after the newest", maxBytes: 1 << 20, publish: 5, after: 9, max: 100, want: nil},
		{name: "count bound", maxBytes: 1 << 20, publish: 20, max: 100, want: []uint64{13, 14, 15, 16, 17, 18, 19, 20}},
		{name: "max keeps newest", maxBytes: 1 << 20, publish: 20, after: 2, max: 3, want: []uint64{18, 19, 20}},
		{name: "byte bound", maxBytes: 30, publish: 10, max: 100, want: []uint64{8, 9, 10}},
		{name: "filter", maxBytes: 1 << 20, publish: 8, max: 100, filter: Filter{DeviceID: "odd"}, want: []uint64{1, 3, 5, 7}},
		{name: "name prefix", maxBytes: 1 << 20, publish: 12, max: 100, filter: Filter{NamePrefix: "n/1"}, want: []uint64{10, 11, 12}},
		{name: "too old", maxBytes: 1 << 20, publish: 5, max: 100, age: time.Hour, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(maxEvents, tt.maxBytes, time.Minute)
			for i := 1; i <= tt.publish; i++ {
				dev := "even"
				if i%2 == 1 {
					dev = "odd"
				}
				e := Event{ID: uint64(i), Name: "n/" + strconv.Itoa(i), DeviceID: dev}
				r.add(e, metaOf(&e), 10)
			}
			m := compile(tt.filter)
			got, hw := r.since(&m, tt.after, tt.max, time.Now().Add(tt.age))
			ids := make([]uint64, len(got))
			for i, e := range got {
				ids[i] = e.ID
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("since = %v; want %v", ids, tt.want)
			}
			if hw != uint64(tt.publish) {
				t.Errorf("high water = %d; want %d", hw, tt.publish)
			}
			if r.n > maxEvents || r.bytes > tt.maxBytes {
				t.Errorf("ring holds %d events, %d bytes; bounds %d, %d", r.n, r.bytes, maxEvents, tt.maxBytes)
			}
		})
	}
}

func TestNewest(t *testing.T) {
	n := newest{max: 3}
	for i := range 100 {
		n.push(Event{ID: uint64(i)})
		if len(n.evs) >= 2*n.max {
			t.Fatalf("newest grew to %d", len(n.evs))
		}
	}
	got := n.events()
	if len(got) != 3 || got[0].ID != 97 || got[2].ID != 99 {
		t.Errorf("events() = %+v; want IDs 97..99", got)
	}
}
