package bus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
)

// TestNotices checks that a notice reaches every subscriber of its topic,
// the publisher's own process included, and no other topic; that stop
// ends delivery; and that oversized notices are refused.
func TestNotices(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	got := make(chan string, 8)
	stop, err := b.SubscribeNotices("access", func(d []byte) { got <- string(d) })
	if err != nil {
		t.Fatal(err)
	}
	other := make(chan string, 8)
	stopOther, err := b.SubscribeNotices("other", func(d []byte) { other <- string(d) })
	if err != nil {
		t.Fatal(err)
	}
	defer stopOther()
	if err := b.PublishNotice("access", []byte(`{"user":"u1"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d != `{"user":"u1"}` {
			t.Errorf("notice %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice")
	}
	stop()
	if err := b.PublishNotice("access", []byte("late")); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishNotice("other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-other // delivered after "late" would have been
	select {
	case d := <-got:
		t.Errorf("notice %q after stop", d)
	default:
	}
	if err := b.PublishNotice("access", []byte(strings.Repeat("x", 65<<10))); err == nil {
		t.Error("oversized notice accepted")
	}
}
