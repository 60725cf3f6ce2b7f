package webhook

import (
	"slices"
	"testing"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

func entryOf(id, user string, product int64, event string) *hookEntry {
	return &hookEntry{h: store.Webhook{ID: id, UserID: user, ProductID: product, Event: event,
		IntegrationType: store.IntegrationWebhook}}
}

func matched(x *index, ev bus.Event) []string {
	var ids []string
	x.match(&ev, func(he *hookEntry) { ids = append(ids, he.h.ID) })
	slices.Sort(ids)
	return ids
}

func TestIndexMatch(t *testing.T) {
	x := newIndex()
	x.upsert(entryOf("u1-temp", "u1", 0, "temp"))
	x.upsert(entryOf("u1-all", "u1", 0, "t"))
	x.upsert(entryOf("u2-temp", "u2", 0, "temp"))
	x.upsert(entryOf("p7", "u3", 7, "temp"))
	for _, c := range []struct {
		ev   bus.Event
		want []string
	}{
		{bus.Event{Name: "temperature", UserID: "u1", DeviceID: "d"}, []string{"u1-all", "u1-temp"}},
		{bus.Event{Name: "tick", UserID: "u1", DeviceID: "d"}, []string{"u1-all"}},
		{bus.Event{Name: "temperature", UserID: "u2", ProductID: 7, DeviceID: "d"}, []string{"p7", "u2-temp"}},
		{bus.Event{Name: "temperature", ProductID: 7, DeviceID: "d"}, []string{"p7"}},
		{bus.Event{Name: "temperature", DeviceID: "d"}, nil},
		{bus.Event{Name: "hook-response/temperature/0", UserID: "u1", DeviceID: bus.DeviceInternal}, nil},
	} {
		if got := matched(x, c.ev); !slices.Equal(got, c.want) {
			t.Errorf("%+v matched %v; want %v", c.ev, got, c.want)
		}
	}
	// Replacing a hook moves it; removing it removes it.
	x.upsert(entryOf("u1-temp", "u2", 0, "temp"))
	if got := matched(x, bus.Event{Name: "temp", UserID: "u2", DeviceID: "d"}); !slices.Equal(got, []string{"u1-temp", "u2-temp"}) {
		t.Errorf("after the move: %v", got)
	}
	x.remove("u2-temp")
	x.remove("u1-temp")
	if got := matched(x, bus.Event{Name: "temp", UserID: "u2", DeviceID: "d"}); got != nil {
		t.Errorf("after removal: %v", got)
	}
	if x.len() != 2 || len(x.byUser["u2"]) != 0 {
		t.Errorf("index holds %d hooks, byUser[u2] %d", x.len(), len(x.byUser["u2"]))
	}
}

// TestIndexReplace: a full reload read before a concurrent change does
// not undo it, and reports the hooks that disappeared.
func TestIndexReplace(t *testing.T) {
	x := newIndex()
	x.upsert(entryOf("a", "u", 0, "e"))
	x.upsert(entryOf("b", "u", 0, "e"))
	gen := x.generation()
	// The load (a, b) is read; meanwhile c is created and b deleted.
	x.upsert(entryOf("c", "u", 0, "e"))
	x.remove("b")
	removed := x.replace([]*hookEntry{entryOf("a", "u", 0, "e"), entryOf("b", "u", 0, "e")}, gen)
	if x.get("c") == nil || x.get("b") != nil || x.get("a") == nil {
		t.Errorf("after replace: a=%v b=%v c=%v; want a and c", x.get("a") != nil, x.get("b") != nil, x.get("c") != nil)
	}
	if len(removed) != 0 {
		t.Errorf("removed %v; want none", removed)
	}
	// A later load without a removes it and says so.
	removed = x.replace([]*hookEntry{entryOf("c", "u", 0, "e")}, x.generation())
	if !slices.Equal(removed, []string{"a"}) || x.len() != 1 {
		t.Errorf("removed %v, %d left; want [a], 1", removed, x.len())
	}
	if len(x.touched) != 0 {
		t.Errorf("touched not cleared: %v", x.touched)
	}
}
