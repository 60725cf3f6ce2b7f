package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// IntegrationWebhook is the integration type of a webhook; /v1/webhooks
// lists only integrations of this type.
const IntegrationWebhook = "Webhook"

// Webhook is one integration: a user's (sandbox) hook when ProductID is 0,
// or a product team's hook otherwise. IDs are 24 lower-case hex
// characters. See docs/particle-api.md#webhooks and docs/webhooks.md.
type Webhook struct {
	ID string
	// UserID is the owning user for a sandbox hook, or the user who
	// created a product hook.
	UserID string
	// ProductID is the owning product, or 0 for a sandbox hook.
	ProductID int64
	// IntegrationType is IntegrationWebhook or another type stored
	// opaquely.
	IntegrationType string
	// Name is the display name; it may be empty.
	Name string
	// Event is the event name prefix that triggers the hook (1-64 bytes,
	// case-sensitive).
	Event string
	// DeviceID, when set, limits the hook to events of that device.
	DeviceID string
	// Disabled hooks never fire.
	Disabled bool
	// Settings is the outgoing request's configuration.
	Settings  WebhookSettings
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version counts the row's updates (1 when created); UpdateWebhook
	// checks it when set, so a write based on a stale read fails with
	// ErrStale.
	Version int64
}

// BasicAuth is a webhook's HTTP basic credentials (templates allowed).
type BasicAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// WebhookSettings is what a webhook sends and how it treats the answer.
// It is stored as one JSON document, so new fields need no migration.
// Every string may hold mustache templates
// (docs/particle-api.md#the-outgoing-request).
type WebhookSettings struct {
	URL         string `json:"url"`
	RequestType string `json:"requestType"` // GET, POST, PUT or DELETE
	// JSON is the JSON body template: an object, or a string rendered then
	// parsed. At most one of JSON, Form and Body is set.
	JSON    json.RawMessage   `json:"json,omitempty"`
	Form    map[string]string `json:"form,omitempty"`
	Body    *string           `json:"body,omitempty"`
	Query   map[string]string `json:"query,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Auth    *BasicAuth        `json:"auth,omitempty"`
	// ResponseTemplate renders a 2xx response before it is published back.
	ResponseTemplate   string `json:"responseTemplate,omitempty"`
	ResponseTopic      string `json:"responseTopic,omitempty"`
	ErrorResponseTopic string `json:"errorResponseTopic,omitempty"`
	NoDefaults         bool   `json:"noDefaults,omitempty"`
	// RejectUnauthorized false skips TLS verification; the API defaults
	// it to true.
	RejectUnauthorized   bool `json:"rejectUnauthorized"`
	Unchunked            bool `json:"unchunked,omitempty"`
	DataURLResponseEvent bool `json:"dataUrlResponseEvent,omitempty"`
	// SigningSecret is the HMAC-SHA256 key of the optional signature
	// header (a Wick extension), sealed with the server key; nil for none.
	SigningSecret []byte `json:"signingSecret,omitempty"`
	// SealedCredentials holds Auth and Headers sealed with the server key
	// (see SealCredentials); while it is set, Auth and Headers are empty
	// in storage. Hooks saved before sealing existed have plaintext Auth
	// and Headers and no SealedCredentials; both forms are read.
	SealedCredentials []byte `json:"sealedCredentials,omitempty"`
	// Extra keeps the fields of other integration types opaquely.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// WebhookCredentials are the settings of a webhook that hold a third
// party's secrets: its basic-auth credentials and its custom headers
// (API keys, bearer tokens). They are stored sealed.
type WebhookCredentials struct {
	Auth    *BasicAuth        `json:"auth,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// SealCredentials moves Auth and Headers into SealedCredentials, encrypted
// by seal, and clears them. With neither set nothing is sealed and
// SealedCredentials is cleared.
func (s *WebhookSettings) SealCredentials(seal func(plain []byte) ([]byte, error)) error {
	s.SealedCredentials = nil
	if s.Auth == nil && len(s.Headers) == 0 {
		return nil
	}
	plain, err := json.Marshal(WebhookCredentials{Auth: s.Auth, Headers: s.Headers})
	if err != nil {
		return fmt.Errorf("store: encode webhook credentials: %w", err)
	}
	sealed, err := seal(plain)
	if err != nil {
		return err
	}
	s.SealedCredentials, s.Auth, s.Headers = sealed, nil, nil
	return nil
}

// OpenCredentials restores Auth and Headers from SealedCredentials,
// decrypted by open, and clears SealedCredentials. Settings without
// SealedCredentials (saved in plaintext by an earlier version) are left
// as they are.
func (s *WebhookSettings) OpenCredentials(open func(sealed []byte) ([]byte, error)) error {
	if len(s.SealedCredentials) == 0 {
		return nil
	}
	plain, err := open(s.SealedCredentials)
	if err != nil {
		return err
	}
	var c WebhookCredentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return fmt.Errorf("store: decode webhook credentials: %w", err)
	}
	s.Auth, s.Headers, s.SealedCredentials = c.Auth, c.Headers, nil
	return nil
}

// WebhookDelivery is one attempt to deliver an event to a webhook, as the
// per-webhook delivery log shows it.
type WebhookDelivery struct {
	// ID is assigned by the store, increasing in insertion order.
	ID        int64
	WebhookID string
	// EventID is the bus event ID that triggered the attempt.
	EventID   uint64
	EventName string
	DeviceID  string
	// Attempt counts from 1.
	Attempt int
	// At is when the request was sent.
	At     time.Time
	Method string
	URL    string
	// Status is the HTTP status, or 0 when no response came.
	Status  int
	Latency time.Duration
	// Error says why the attempt failed; empty on success.
	Error string
	// Response is the start of the response body (at most 1 KiB).
	Response string
}

// Webhooks holds webhooks and integrations, and their delivery logs.
type Webhooks interface {
	// CreateWebhook inserts w, assigning w.ID (24 hex) when empty and
	// CreatedAt and UpdatedAt when zero. It fails with ErrConflict if the
	// ID exists.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// WebhookByID returns the webhook or ErrNotFound.
	WebhookByID(ctx context.Context, id string) (*Webhook, error)
	// WebhooksByUser lists a user's sandbox hooks (ProductID 0), oldest
	// first.
	WebhooksByUser(ctx context.Context, userID string) ([]Webhook, error)
	// WebhooksByProduct lists a product's hooks, oldest first.
	WebhooksByProduct(ctx context.Context, productID int64) ([]Webhook, error)
	// AllWebhooks lists every webhook, for the delivery engine's index.
	AllWebhooks(ctx context.Context) ([]Webhook, error)
	// UpdateWebhook replaces every field but ID, UserID, ProductID and
	// CreatedAt; UpdatedAt becomes now when zero. ErrNotFound if absent.
	// With a Version it fails with ErrStale when the row's version differs
	// (another writer came first); on success the version goes up by one,
	// in the row and in w.
	UpdateWebhook(ctx context.Context, w *Webhook) error
	// DeleteWebhook removes the webhook and its delivery log.
	DeleteWebhook(ctx context.Context, id string) error
	// AddWebhookDeliveries appends attempts to the delivery logs in one
	// transaction, setting their IDs, and keeps only the newest keep
	// entries of each webhook touched (keep ≤ 0 keeps all). Entries of
	// deleted webhooks are dropped silently and keep ID 0. Invalid UTF-8
	// and NUL bytes in text fields are stored as U+FFFD.
	AddWebhookDeliveries(ctx context.Context, ds []*WebhookDelivery, keep int) error
	// WebhookDeliveries returns up to limit newest entries of a webhook's
	// log, newest first (limit ≤ 0: all).
	WebhookDeliveries(ctx context.Context, webhookID string, limit int) ([]WebhookDelivery, error)
}
