package store

import (
	"math/rand/v2"
	"regexp"
	"sync"
	"testing"
)

func TestDeviceNamesShape(t *testing.T) {
	plain := regexp.MustCompile(`^[a-z]{3,8}_[a-z]{3,8}$`)
	suffixed := regexp.MustCompile(`^[a-z]{3,8}_[a-z]{3,8}_[0-9]{4}$`)
	n := NewDeviceNames(rand.NewPCG(1, 2))
	tests := []struct {
		attempt int
		want    *regexp.Regexp
	}{
		{0, plain},
		{1, plain},
		{PlainNameAttempts - 1, plain},
		{PlainNameAttempts, suffixed},
		{NameAttempts - 1, suffixed},
	}
	for _, tt := range tests {
		for range 200 {
			name := n.Name(tt.attempt)
			if !tt.want.MatchString(name) {
				t.Fatalf("Name(%d) = %q, want %v", tt.attempt, name, tt.want)
			}
			if len(name) > 22 {
				t.Fatalf("Name(%d) = %q: longer than 22", tt.attempt, name)
			}
		}
	}
}

func TestDeviceNamesRepeatWithTheSameSource(t *testing.T) {
	a, b := NewDeviceNames(rand.NewPCG(7, 7)), NewDeviceNames(rand.NewPCG(7, 7))
	for i := range 50 {
		if x, y := a.Name(i%NameAttempts), b.Name(i%NameAttempts); x != y {
			t.Fatalf("draw %d: %q != %q with the same seed", i, x, y)
		}
	}
	if NewRandomDeviceNames().Name(0) == "" {
		t.Fatal("random generator gave an empty name")
	}
}

func TestDeviceNamesSpread(t *testing.T) {
	n := NewDeviceNames(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	for range 1000 {
		seen[n.Name(0)] = true
	}
	// 122 × 94 combinations: 1,000 draws repeat a few dozen at most.
	if len(seen) < 900 {
		t.Fatalf("1000 draws gave only %d distinct names", len(seen))
	}
}

func TestDeviceNameWordLists(t *testing.T) {
	word := regexp.MustCompile(`^[a-z]{3,8}$`)
	for _, list := range [][]string{nameFirstWords, nameSecondWords} {
		seen := map[string]bool{}
		for _, w := range list {
			if !word.MatchString(w) {
				t.Errorf("word %q: want 3 to 8 lower-case letters", w)
			}
			if seen[w] {
				t.Errorf("word %q twice", w)
			}
			seen[w] = true
		}
		if len(list) < 90 {
			t.Errorf("list of %d words: too few for readable unique names", len(list))
		}
	}
}

func TestDeviceNamesConcurrent(t *testing.T) {
	n := NewDeviceNames(rand.NewPCG(5, 6))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 100 {
				if n.Name(i%NameAttempts) == "" {
					t.Error("empty name")
				}
			}
		})
	}
	wg.Wait()
}
