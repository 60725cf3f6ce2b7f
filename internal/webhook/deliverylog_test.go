package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

func TestDeliveryLogBuffer(t *testing.T) {
	st := newMemStore()
	for _, id := range []string{"h1", "h2"} {
		st.CreateWebhook(context.Background(), &store.Webhook{ID: id})
	}
	l := newDeliveryLog(st, 3, 5, time.Hour, slog.New(slog.DiscardHandler))
	for i := range 5 {
		l.add(&store.WebhookDelivery{WebhookID: "h1", Attempt: i})
	}
	// h1 holds its newest 3; 2 more fit the total of 5, the next is dropped.
	l.add(&store.WebhookDelivery{WebhookID: "h2", Attempt: 0})
	l.add(&store.WebhookDelivery{WebhookID: "h2", Attempt: 1})
	l.add(&store.WebhookDelivery{WebhookID: "gone", Attempt: 0})
	if d := l.dropped.Load(); d != 1 {
		t.Errorf("dropped %d; want 1", d)
	}
	l.flush(context.Background())
	got, _ := st.WebhookDeliveries(context.Background(), "h1", 0)
	if len(got) != 3 || got[0].Attempt != 4 || got[2].Attempt != 2 {
		t.Errorf("h1 log = %+v; want attempts 4, 3, 2", got)
	}
	if got, _ := st.WebhookDeliveries(context.Background(), "h2", 0); len(got) != 2 {
		t.Errorf("h2 log has %d entries; want 2", len(got))
	}
	if w := l.written.Load(); w != 5 {
		t.Errorf("written %d; want 5", w)
	}
	// Flushing an empty buffer writes nothing.
	l.flush(context.Background())
	if w := l.written.Load(); w != 5 {
		t.Errorf("written %d after an empty flush", w)
	}
	// A failing store loses the batch, counted.
	st.fail = errors.New("disk full")
	l.add(&store.WebhookDelivery{WebhookID: "h1"})
	l.flush(context.Background())
	if d := l.dropped.Load(); d != 2 {
		t.Errorf("dropped %d after a failed write; want 2", d)
	}
}

// TestDeliveryLogRun: the background flusher writes on its own, early
// when half the buffer is used.
func TestDeliveryLogRun(t *testing.T) {
	st := newMemStore()
	st.CreateWebhook(context.Background(), &store.Webhook{ID: "h"})
	l := newDeliveryLog(st, 100, 10, time.Hour, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	for i := range 5 {
		l.add(&store.WebhookDelivery{WebhookID: "h", Error: fmt.Sprint(i)})
	}
	waitFor(t, 5*time.Second, "early flush", func() bool { return l.written.Load() == 5 })
	cancel()
	<-done
}
