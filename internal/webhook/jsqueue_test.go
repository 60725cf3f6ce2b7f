package webhook

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wick-cloud/wick/internal/bus"
)

// TestReaderFindsUnannouncedJobs guards the reader's safety-net poll: a
// job the reader was not told about (its wake-up lost, or the read after
// the wake-up answered by a replica that had not stored it yet) must be
// found by the poll, although the lease renewals and finished jobs, which
// come more often than the poll, keep waking the reader's loop. (Before
// the poll had its own ticker such a job waited for the hook's next job:
// the last event of a burst was never delivered.)
func TestReaderFindsUnannouncedJobs(t *testing.T) {
	h := newHarness(t, testConfig(), harnessOpts{})
	cfg := testConfig()
	cfg.setDefaults(true)
	prefix := "wq" + randomHex(4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, err := newJSQueue(ctx, h.bus.JetStream(), h.bus.Conn(), prefix, "test", &cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	const poll = 400 * time.Millisecond
	q.poll = poll
	q.leaseTTL = 3 * poll / 4 // a renewal every poll/4

	tests := []struct {
		name     string
		announce bool // publish the job the way the matcher does (with a wake-up)
	}{
		{"announced", true},
		{"unannounced", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hook := "hook-" + tc.name
			got := make(chan string, 4)
			stop, _, err := q.consume(ctx, hook, func(d *delivery) {
				got <- d.job.Event.Data
				d.ack()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			// Let the reader find the queue empty and settle.
			time.Sleep(3*poll + poll/2) // between two polls
			j := job{HookID: hook, Enqueued: time.Now(), Event: bus.Event{Name: "x", Data: tc.name, ID: 7}}
			if tc.announce {
				if errs := q.enqueue(ctx, []job{j}); errs[0] != nil {
					t.Fatal(errs[0])
				}
			} else {
				// Stored without the wake-up.
				if _, err := q.js.PublishMsg(ctx, &nats.Msg{Subject: q.freshSubject(hook), Data: appendJob(nil, &j)}); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			select {
			case data := <-got:
				if data != tc.name {
					t.Errorf("delivered %q; want %q", data, tc.name)
				}
				t.Logf("delivered after %v (poll %v)", time.Since(start).Round(time.Millisecond), poll)
			case <-time.After(10 * poll):
				t.Fatalf("job not delivered within %v although the reader polls every %v", 10*poll, poll)
			}
		})
	}
}
