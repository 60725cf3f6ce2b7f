package benchmark

import (
	"slices"
	"testing"
)

func TestOnlineSet(t *testing.T) {
	o := newOnlineSet()
	if _, ok := o.random(); ok {
		t.Fatal("random from an empty set")
	}
	steps := []struct {
		id     string
		online bool
		want   []string
	}{
		{"a", true, []string{"a"}},
		{"b", true, []string{"a", "b"}},
		{"a", true, []string{"a", "b"}}, // twice online: once in the set
		{"c", true, []string{"a", "b", "c"}},
		{"a", false, []string{"b", "c"}},
		{"x", false, []string{"b", "c"}}, // never online
		{"c", false, []string{"b"}},
		{"b", false, nil},
	}
	for i, s := range steps {
		o.set(s.id, s.online)
		got := slices.Sorted(slices.Values(o.ids))
		if !slices.Equal(got, s.want) || len(o.pos) != len(s.want) {
			t.Fatalf("step %d (%s %v): set %v pos %v, want %v", i, s.id, s.online, got, o.pos, s.want)
		}
		for j, id := range o.ids {
			if o.pos[id] != j {
				t.Fatalf("step %d: pos[%s] = %d, want %d", i, id, o.pos[id], j)
			}
		}
		if len(s.want) > 0 {
			if id, ok := o.random(); !ok || !slices.Contains(s.want, id) {
				t.Fatalf("step %d: random %q %v", i, id, ok)
			}
		}
	}
}
