package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestSameStream(t *testing.T) {
	base := jetstream.StreamConfig{Name: "S", Subjects: []string{"a.>"}, MaxAge: time.Minute, MaxMsgs: 10,
		Storage: jetstream.FileStorage, RePublish: &jetstream.RePublish{Source: "a.>", Destination: "b.>"}}
	tests := []struct {
		name   string
		change func(c *jetstream.StreamConfig)
		same   bool
	}{
		{name: "identical", change: func(*jetstream.StreamConfig) {}, same: true},
		{name: "replicas 0 is 1", change: func(c *jetstream.StreamConfig) { c.Replicas = 1 }, same: true},
		{name: "description ignored", change: func(c *jetstream.StreamConfig) { c.Description = "x" }, same: true},
		{name: "replicas", change: func(c *jetstream.StreamConfig) { c.Replicas = 3 }},
		{name: "subjects", change: func(c *jetstream.StreamConfig) { c.Subjects = []string{"c.>"} }},
		{name: "max age", change: func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }},
		{name: "storage", change: func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }},
		{name: "no republish", change: func(c *jetstream.StreamConfig) { c.RePublish = nil }},
		{name: "republish target", change: func(c *jetstream.StreamConfig) {
			c.RePublish = &jetstream.RePublish{Source: "a.>", Destination: "z.>"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := base
			rp := *base.RePublish
			have.RePublish = &rp
			tt.change(&have)
			if got := sameStream(have, base); got != tt.same {
				t.Errorf("sameStream = %v; want %v", got, tt.same)
			}
		})
	}
}

func TestRetrySetup(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("succeeds after failures", func(t *testing.T) {
		calls := 0
		err := RetrySetup(t.Context(), log, "thing", func(ctx context.Context) error {
			calls++
			if _, ok := ctx.Deadline(); !ok {
				t.Error("attempt without a deadline")
			}
			if calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("err %v after %d calls; want nil after 3", err, calls)
		}
	})
	t.Run("stops when the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		boom := errors.New("boom")
		calls := 0
		err := RetrySetup(ctx, log, "thing", func(context.Context) error {
			calls++
			if calls == 2 {
				cancel()
			}
			return boom
		})
		if err == nil || calls != 2 {
			t.Errorf("err %v after %d calls; want an error after 2", err, calls)
		}
	})
}

func TestRetryNoResponders(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	noResp := fmt.Errorf("bus: replay: %w", nats.ErrNoResponders)
	other := errors.New("bus: replay: bad request")
	tests := []struct {
		name      string
		results   []error // fn's answers in order; the last repeats
		bound     time.Duration
		wantErr   error
		wantCalls int
		maxCalls  int // > wantCalls: any count in [wantCalls, maxCalls] (timing)
	}{
		{name: "first try", results: []error{nil}, bound: time.Second, wantCalls: 1},
		{name: "after two no responders", results: []error{noResp, noResp, nil}, bound: time.Second, wantCalls: 3},
		{name: "other error at once", results: []error{other, nil}, bound: time.Second, wantErr: other, wantCalls: 1},
		{name: "no responders then other", results: []error{noResp, other}, bound: time.Second, wantErr: other, wantCalls: 2},
		// 20+40+80 ms fit in 150 ms, the next 160 ms would not.
		{name: "bound reached", results: []error{noResp}, bound: 150 * time.Millisecond, wantErr: nats.ErrNoResponders, wantCalls: 2, maxCalls: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := retryNoResponders(t.Context(), log, tt.bound, func() error {
				r := tt.results[min(calls, len(tt.results)-1)]
				calls++
				return r
			})
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v; want %v", err, tt.wantErr)
			}
			if calls < tt.wantCalls || calls > max(tt.wantCalls, tt.maxCalls) {
				t.Errorf("calls = %d; want %d (up to %d)", calls, tt.wantCalls, max(tt.wantCalls, tt.maxCalls))
			}
		})
	}
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := retryNoResponders(ctx, log, time.Minute, func() error {
			calls++
			if calls == 2 {
				cancel()
			}
			return noResp
		})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, nats.ErrNoResponders) || calls != 2 {
			t.Errorf("err = %v after %d calls; want no responders then canceled after 2", err, calls)
		}
	})
}
