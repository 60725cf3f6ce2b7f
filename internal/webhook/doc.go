// Package webhook delivers events to webhooks (docs/webhooks.md; Particle's
// contract is docs/particle-api.md#webhooks): it renders a hook's request
// from an event, queues deliveries durably in NATS JetStream, sends them with
// retries, backoff and per-host throttling, logs every attempt, and publishes
// the hook-sent, hook-response and hook-error events back to the bus.
package webhook
