package webhook

import (
	"context"
	"errors"
	"net/http"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

// errNotImplemented marks the parts still being written.
var errNotImplemented = errors.New("webhook: not implemented")

// Triggers reports whether event e fires hook h (spec §9.3).
func Triggers(h *store.Webhook, e bus.Event) bool { return false }

// BuildRequest renders h's request for event e. A non-empty signingKey adds
// the HMAC-SHA256 signature headers.
func BuildRequest(ctx context.Context, h *store.Webhook, e bus.Event, signingKey []byte) (*http.Request, error) {
	return nil, errNotImplemented
}

// SentEvent is the hook-sent event published when h's request for e is sent.
func SentEvent(h *store.Webhook, e bus.Event) bus.Event { return bus.Event{} }

// ResponseEvents are the hook-response events for a 2xx answer to h's
// request for e.
func ResponseEvents(h *store.Webhook, e bus.Event, contentType string, body []byte) ([]bus.Event, error) {
	return nil, errNotImplemented
}

// ErrorEvents are the hook-error events for a failed request of h for e;
// message is e.g. "error status 404 from example.com".
func ErrorEvents(h *store.Webhook, e bus.Event, message string, body []byte) []bus.Event { return nil }
