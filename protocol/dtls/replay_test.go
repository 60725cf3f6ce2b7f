package dtls

import "testing"

// TestReplayWindow walks a window through the cases of RFC 6347, section
// 4.1.2.6: new, duplicate, inside the window, too old, big jumps.
func TestReplayWindow(t *testing.T) {
	type step struct {
		seq  uint64
		want bool // Check result; a passing step is then marked
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first record any number", []step{{1000, true}, {1000, false}}},
		{"zero first", []step{{0, true}, {0, false}, {1, true}}},
		{"in order", []step{{1, true}, {2, true}, {3, true}, {2, false}, {3, false}}},
		{"reordered inside window", []step{{10, true}, {5, true}, {7, true}, {5, false}, {6, true}, {6, false}}},
		{"edge of window", []step{{100, true}, {37, true}, {36, false}, {37, false}}},
		{"slide forgets nothing inside", []step{{1, true}, {3, true}, {64, true}, {3, false}, {2, true}, {1, false}}},
		{"jump past window", []step{{1, true}, {2, true}, {1000, true}, {999, true}, {936, false}, {937, true}, {2, false}}},
		{"jump exactly 64", []step{{5, true}, {69, true}, {5, false}, {6, true}}},
		{"max seq", []step{{MaxSeq, true}, {MaxSeq, false}, {MaxSeq - 63, true}, {MaxSeq - 64, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w ReplayWindow
			for i, s := range tt.steps {
				if got := w.Check(s.seq); got != s.want {
					t.Fatalf("step %d: Check(%d) = %v, want %v", i, s.seq, got, s.want)
				}
				if s.want {
					w.Mark(s.seq)
				}
			}
			w.Reset()
			if !w.Check(tt.steps[0].seq) {
				t.Fatal("Reset window rejects a number")
			}
		})
	}
}

// TestReplayWindowMarkOld checks that marking a number below the window is
// harmless.
func TestReplayWindowMarkOld(t *testing.T) {
	var w ReplayWindow
	w.Mark(200)
	w.Mark(3)
	if w.Check(3) || !w.Check(199) || w.Check(200) {
		t.Fatalf("window after old mark: %+v", w)
	}
}

// TestReplayWindowState saves and restores windows and checks that the
// restored window answers like the original for every nearby number.
func TestReplayWindowState(t *testing.T) {
	tests := []struct {
		name  string
		marks []uint64
	}{
		{"empty", nil},
		{"zero only", []uint64{0}},
		{"sparse", []uint64{3, 10, 64, 70, 71}},
		{"max", []uint64{MaxSeq - 100, MaxSeq - 1, MaxSeq}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w ReplayWindow
			for _, s := range tt.marks {
				w.Mark(s)
			}
			latest, bitmap := w.State()
			r := RestoreReplayWindow(latest, bitmap)
			lo := latest - min(latest, 70)
			for s := lo; s <= latest+2 && s >= lo; s++ {
				if w.Check(s) != r.Check(s) {
					t.Fatalf("Check(%d): original %v, restored %v", s, w.Check(s), r.Check(s))
				}
			}
		})
	}
	if r := RestoreReplayWindow(5, 0b10); r.Check(5) || r.Check(4) || !r.Check(3) {
		t.Fatalf("bit 0 not forced: %+v", r)
	}
}
