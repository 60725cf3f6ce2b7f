package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream setup in a cluster (see docs/cluster-test.md). Several Wick
// processes usually start together: a fresh NATS cluster may still be
// electing its JetStream leader, and with replicas > 1 concurrent
// create-or-update requests for the same stream time out on the servers
// while the first creation settles (seen with three nodes and
// --nats-replicas 3 in internal/cluster). So setup retries, with a bound,
// and does not update a stream whose configuration is already the wanted
// one.
const (
	// SetupTimeout bounds the whole JetStream setup of one stream or bucket.
	SetupTimeout = 60 * time.Second
	// setupAttempt bounds one request of it.
	setupAttempt = 5 * time.Second
)

// RetrySetup runs fn until it succeeds, ctx ends or SetupTimeout passes,
// each attempt with its own deadline of at most setupAttempt; it waits a
// little longer between attempts each time and logs each retry.
func RetrySetup(ctx context.Context, log *slog.Logger, what string, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(SetupTimeout)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, setupAttempt)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("bus: %s (%d attempts): %w", what, attempt, err)
		}
		log.Info("bus: jetstream setup failed; retrying", "what", what, "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("bus: %s: %w", what, ctx.Err())
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// EnsureStream makes sure the stream of cfg exists with cfg's settings: an
// existing stream with the same subjects, limits, storage, replicas and
// republish is left alone (no update request), anything else is created or
// updated. It retries like RetrySetup.
func EnsureStream(ctx context.Context, log *slog.Logger, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var st jetstream.Stream
	err := RetrySetup(ctx, log, "stream "+cfg.Name, func(ctx context.Context) error {
		s, err := js.Stream(ctx, cfg.Name)
		if err == nil && sameStream(s.CachedInfo().Config, cfg) {
			st = s
			return nil
		}
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		st, err = js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	return st, err
}

// sameStream reports whether an existing stream's configuration has the
// settings Wick sets in want.
func sameStream(have, want jetstream.StreamConfig) bool {
	replicas := func(n int) int { return max(n, 1) }
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention && have.Discard == want.Discard &&
		have.MaxAge == want.MaxAge && have.MaxMsgs == want.MaxMsgs && have.MaxBytes == want.MaxBytes &&
		have.Storage == want.Storage && replicas(have.Replicas) == replicas(want.Replicas) &&
		sameRePublish(have.RePublish, want.RePublish)
}

func sameRePublish(a, b *jetstream.RePublish) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// noRespondersFor bounds how long a request path keeps retrying "no
// responders" (retryNoResponders).
const noRespondersFor = 5 * time.Second

// retryNoResponders runs fn again while it fails with nats.ErrNoResponders,
// backing off from 20 ms to 500 ms, until it returns anything else, ctx ends
// or the next wait would pass bound. In a NATS cluster a consumer that was
// just created may not answer its first pull yet, and a stream whose leader
// is being elected answers nobody for a moment; the client library reports
// both at once as "no responders" instead of waiting (a replay for
// Last-Event-ID failed so in CI, see docs/cluster-test.md).
func retryNoResponders(ctx context.Context, log *slog.Logger, bound time.Duration, fn func() error) error {
	deadline := time.Now().Add(bound)
	wait := 20 * time.Millisecond
	for {
		err := fn()
		if err == nil || !errors.Is(err, nats.ErrNoResponders) || time.Now().Add(wait).After(deadline) {
			return err
		}
		log.Debug("bus: no responders; retrying", "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (then %w)", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
