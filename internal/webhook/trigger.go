package webhook

import (
	"strings"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

// Name prefixes of the events webhooks publish back
// (docs/particle-api.md#events-published-back).
const (
	prefixSent     = "hook-sent/"
	prefixResponse = "hook-response/"
	prefixError    = "hook-error/"
)

// Triggers reports whether event e fires hook h
// (docs/particle-api.md#when-a-hook-fires): h is an enabled webhook
// (integration type Webhook, or unset), e's name starts with h.Event
// (case-sensitive, never empty), e is not an event webhooks published
// (IsHookEvent), the device filter (if any) names e's device, and e belongs to
// the hook's owner — for a product hook, e's product is h's product (any device
// of it, claimed or not, or an API publish to the product); for a sandbox hook
// (ProductID 0), e's owner user is h's user (the user's devices and the user's
// API publishes).
func Triggers(h *store.Webhook, e bus.Event) bool {
	if h == nil || h.Disabled || h.Event == "" || !strings.HasPrefix(e.Name, h.Event) {
		return false
	}
	if h.IntegrationType != "" && h.IntegrationType != store.IntegrationWebhook {
		return false
	}
	if IsHookEvent(e) {
		return false
	}
	if h.DeviceID != "" && !strings.EqualFold(h.DeviceID, e.DeviceID) {
		return false
	}
	if h.ProductID != 0 {
		return e.ProductID == h.ProductID
	}
	return e.UserID != "" && e.UserID == h.UserID
}

// IsHookEvent reports whether e was published by a webhook (hook-sent,
// hook-response, hook-error, custom response topics): such events never
// trigger webhooks, so that hooks cannot loop.
func IsHookEvent(e bus.Event) bool {
	return e.DeviceID == bus.DeviceInternal ||
		strings.HasPrefix(e.Name, prefixSent) ||
		strings.HasPrefix(e.Name, prefixResponse) ||
		strings.HasPrefix(e.Name, prefixError)
}
