// Package storetest is the conformance suite of store.Store: every
// implementation runs Run and must pass it unchanged.
//
// The suite covers every method of every aggregate interface: creation with
// assigned IDs and timestamps, reads, updates, deletes with their cascades,
// unique conflicts, missing rows, ordering, paging, single use of refresh
// tokens and claim codes under concurrency, expiry, the session rule of
// device connection state, per-owner device names, and the round trip of
// every field (times in UTC at millisecond precision, nil times, MFA
// secrets, JSON settings, device keys and descriptions), and webhooks with
// their batched, pruned delivery logs.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; Run closes it when the calling test ends, and open may register
// further cleanup (such as dropping a database) with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	suites := []struct {
		name  string
		tests []test
	}{
		{"Users", userTests},
		{"Products", productTests},
		{"Customers", customerTests},
		{"Clients", clientTests},
		{"Tokens", tokenTests},
		{"Challenges", challengeTests},
		{"Devices", deviceTests},
		{"DeviceKeys", deviceKeyTests},
		{"DTLSSessions", dtlsSessionTests},
		{"ClaimCodes", claimCodeTests},
		{"Webhooks", webhookTests},
		{"Invites", inviteTests},
		{"AuthCodes", authCodeTests},
		{"OAuthGrants", grantTests},
		{"Firmware", firmwareTests},
		{"Presence", presenceTests},
	}
	for _, suite := range suites {
		t.Run(suite.name, func(t *testing.T) {
			for _, tc := range suite.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					tc.fn(t, s)
				})
			}
		})
	}
}

// test is one conformance case, run against a fresh store.
type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// base is a fixed instant, with a sub-millisecond part and a non-UTC zone,
// from which test times are derived.
var base = time.Date(2024, time.February, 29, 13, 14, 15, 123456789, time.FixedZone("UTC+5", 5*3600))

// at returns base plus d, as the store should return it: UTC, whole
// milliseconds.
func at(d time.Duration) time.Time {
	return base.Add(d).UTC().Truncate(time.Millisecond)
}

// must fails the test at once if err is not nil.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v; want %v", what, err, target)
	}
}

// checkTime fails the test unless got is the instant want, in UTC.
func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v; want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v; want UTC", what, got.Location())
	}
}

// checkStamped fails the test unless got is a stored "now": between lo and
// hi (bracketing the call, widened to whole milliseconds), whole
// milliseconds, in UTC.
func checkStamped(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo.Truncate(time.Millisecond)) || got.After(hi) {
		t.Errorf("%s = %v; want between %v and %v", what, got, lo, hi)
	}
	if got.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("%s = %v; want whole milliseconds", what, got)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v; want UTC", what, got.Location())
	}
}

// checkEqual compares two records field by field. Fields of type time.Time
// and *time.Time are compared as instants and must be in UTC; all others
// with reflect.DeepEqual (so a nil slice differs from an empty one).
func checkEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	if gv.Kind() == reflect.Pointer {
		if gv.IsNil() || wv.IsNil() {
			if gv.IsNil() != wv.IsNil() {
				t.Errorf("%s = %v; want %v", what, got, want)
			}
			return
		}
		gv, wv = gv.Elem(), wv.Elem()
	}
	typ := gv.Type()
	for i := range typ.NumField() {
		name := what + "." + typ.Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		switch g := g.(type) {
		case time.Time:
			checkTime(t, name, g, w.(time.Time))
		case *time.Time:
			w := w.(*time.Time)
			switch {
			case g == nil && w == nil:
			case g == nil || w == nil:
				t.Errorf("%s = %v; want %v", name, fmtTimePtr(g), fmtTimePtr(w))
			default:
				checkTime(t, name, *g, *w)
			}
		default:
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s = %#v; want %#v", name, g, w)
			}
		}
	}
}

// fmtTimePtr prints an optional time.
func fmtTimePtr(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.String()
}

// checkList compares two lists element by element with checkEqual.
func checkList[T any](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d items; want %d:\n got  %+v\n want %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		checkEqual(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

// checkStrings compares two string sets, ignoring order.
func checkStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q; want %q", what, got, want)
	}
}
