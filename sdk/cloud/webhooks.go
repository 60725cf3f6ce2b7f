package cloud

import (
	"context"
	"encoding/json"
)

// NewWebhook is the input of CreateWebhook: the fields of Particle's
// legacy webhook API that are used most (docs/webhooks.md has them all).
type NewWebhook struct {
	// Event is the event name prefix that triggers the hook (required).
	Event string `json:"event"`
	// URL receives the requests (required).
	URL string `json:"url"`
	// RequestType is GET, POST (the default), PUT or DELETE.
	RequestType string `json:"requestType,omitempty"`
	// Name is an optional label.
	Name string `json:"name,omitempty"`
	// DeviceID, when set, keeps one device's events.
	DeviceID string `json:"deviceID,omitempty"`
	// JSON is a JSON body template.
	JSON map[string]any `json:"json,omitempty"`
	// Form is a form body template.
	Form map[string]any `json:"form,omitempty"`
	// Query adds query parameters.
	Query map[string]any `json:"query,omitempty"`
	// Headers adds request headers.
	Headers map[string]string `json:"headers,omitempty"`
	// NoDefaults leaves out the default event fields.
	NoDefaults bool `json:"noDefaults,omitempty"`
	// SigningSecret makes Wick sign each request (docs/webhooks.md).
	SigningSecret string `json:"signingSecret,omitempty"`
}

// CreatedWebhook is the answer of CreateWebhook.
type CreatedWebhook struct {
	// ID is the hook's ID.
	ID string `json:"id"`
	// URL is the target URL.
	URL string `json:"url"`
	// Event is the event prefix.
	Event string `json:"event"`
	// Name is the label, nil when none.
	Name *string `json:"name"`
	// RequestType is the HTTP method.
	RequestType string `json:"requestType"`
	// CreatedAt is the ISO-8601 creation time.
	CreatedAt string `json:"created_at"`
	// HookURL is the hook's API URL.
	HookURL string `json:"hookUrl"`
	// Signed is true when requests are signed.
	Signed bool `json:"signed"`
}

// Webhook is a hook as GetWebhook and ListWebhooks show it.
type Webhook struct {
	// ID is the hook's ID.
	ID string `json:"id"`
	// Event is the event prefix.
	Event string `json:"event"`
	// URL is the target URL.
	URL string `json:"url"`
	// RequestType is the HTTP method.
	RequestType string `json:"requestType"`
	// Name is the label, nil when none.
	Name *string `json:"name"`
	// DeviceID is the one device it listens to, nil for all.
	DeviceID *string `json:"deviceID"`
	// Disabled is true for a paused hook.
	Disabled bool `json:"disabled"`
	// IntegrationType is "Webhook".
	IntegrationType string `json:"integration_type"`
	// ProductID is the product of a product hook, else 0.
	ProductID int64 `json:"product_id,omitempty"`
	// Signed is true when requests are signed.
	Signed bool `json:"signed"`
	// CreatedAt is the ISO-8601 creation time.
	CreatedAt string `json:"created_at"`
	// Raw is the whole object, for the settings this type lacks.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes a hook and keeps the whole object in Raw.
func (w *Webhook) UnmarshalJSON(b []byte) error {
	type plain Webhook
	if err := json.Unmarshal(b, (*plain)(w)); err != nil {
		return err
	}
	w.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// hooksPath is the webhooks of product, or the user's when product is "".
func hooksPath(product string) string {
	if product == "" {
		return "/v1/webhooks"
	}
	return productPath(product) + "/webhooks"
}

// CreateWebhook is POST /v1/webhooks (or /v1/products/{product}/webhooks
// when product is not "").
func (c *Client) CreateWebhook(ctx context.Context, product string, w NewWebhook) (*CreatedWebhook, error) {
	var out CreatedWebhook
	if err := c.do(ctx, call{method: "POST", path: hooksPath(product), json: w}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhooks is GET /v1/webhooks (or the product's), oldest first.
func (c *Client) ListWebhooks(ctx context.Context, product string) ([]Webhook, error) {
	var out []Webhook
	err := c.do(ctx, call{method: "GET", path: hooksPath(product)}, &out)
	return out, err
}

// GetWebhook is GET /v1/webhooks/{id} (or the product's).
func (c *Client) GetWebhook(ctx context.Context, product, id string) (*Webhook, error) {
	var out Webhook
	if err := c.do(ctx, call{method: "GET", path: hooksPath(product) + "/" + pathEscape(id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhook is DELETE /v1/webhooks/{id} (or the product's).
func (c *Client) DeleteWebhook(ctx context.Context, product, id string) error {
	return c.do(ctx, call{method: "DELETE", path: hooksPath(product) + "/" + pathEscape(id)}, nil)
}

// Delivery is one entry of a hook's delivery log.
type Delivery struct {
	// ID is the entry's number.
	ID int64 `json:"id"`
	// Time is the ISO-8601 time of the attempt.
	Time string `json:"time"`
	// Event is the event's name.
	Event string `json:"event"`
	// EventID is the event's ID on the bus.
	EventID uint64 `json:"event_id"`
	// DeviceID is the publishing device, nil for API events.
	DeviceID *string `json:"device_id"`
	// Attempt counts the tries of this event, from 1.
	Attempt int `json:"attempt"`
	// Method is the HTTP method sent.
	Method string `json:"method"`
	// URL is the URL requested.
	URL string `json:"url"`
	// Status is the answer's HTTP status, 0 when none came.
	Status int `json:"status"`
	// LatencyMS is the request's duration in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	// Error is why the attempt failed, nil on success.
	Error *string `json:"error"`
	// Response is the start of the answer's body, when kept.
	Response string `json:"response,omitempty"`
}

// Deliveries is GET /v1/webhooks/{id}/deliveries (or the product's), a
// Wick extension: the newest entries of the hook's delivery log, newest
// first.
func (c *Client) Deliveries(ctx context.Context, product, id string) ([]Delivery, error) {
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
	}
	err := c.do(ctx, call{method: "GET", path: hooksPath(product) + "/" + pathEscape(id) + "/deliveries"}, &out)
	return out.Deliveries, err
}

// NewIntegration is the input of CreateIntegration and UpdateIntegration:
// a webhook's fields and the integration type.
type NewIntegration struct {
	// IntegrationType is "Webhook" (the default); Wick stores other
	// types but delivers only webhooks.
	IntegrationType string `json:"integration_type,omitempty"`
	NewWebhook
}

// integrationsPath is the integrations of product, or the user's when
// product is "".
func integrationsPath(product string) string {
	if product == "" {
		return "/v1/integrations"
	}
	return productPath(product) + "/integrations"
}

// CreateIntegration is POST /v1/integrations (or the product's).
func (c *Client) CreateIntegration(ctx context.Context, product string, in NewIntegration) (*Webhook, error) {
	var out Webhook
	if err := c.do(ctx, call{method: "POST", path: integrationsPath(product), json: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListIntegrations is GET /v1/integrations (or the product's): every
// integration, oldest first.
func (c *Client) ListIntegrations(ctx context.Context, product string) ([]Webhook, error) {
	var out []Webhook
	err := c.do(ctx, call{method: "GET", path: integrationsPath(product)}, &out)
	return out, err
}

// Integration is the answer of GetIntegration.
type Integration struct {
	Webhook
	// Logs are the newest entries of the delivery log.
	Logs []Delivery `json:"logs"`
}

// UnmarshalJSON decodes the hook and its logs.
func (in *Integration) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &in.Webhook); err != nil {
		return err
	}
	var logs struct {
		Logs []Delivery `json:"logs"`
	}
	if err := json.Unmarshal(b, &logs); err != nil {
		return err
	}
	in.Logs = logs.Logs
	return nil
}

// GetIntegration is GET /v1/integrations/{id} (or the product's).
func (c *Client) GetIntegration(ctx context.Context, product, id string) (*Integration, error) {
	var out struct {
		Integration Integration `json:"integration"`
	}
	if err := c.do(ctx, call{method: "GET", path: integrationsPath(product) + "/" + pathEscape(id)}, &out); err != nil {
		return nil, err
	}
	return &out.Integration, nil
}

// UpdateIntegration is PUT /v1/integrations/{id} (or the product's): in
// replaces the whole configuration; an empty Event or IntegrationType
// keeps the stored one.
func (c *Client) UpdateIntegration(ctx context.Context, product, id string, in NewIntegration) (*Webhook, error) {
	var out struct {
		Integration Webhook `json:"integration"`
	}
	if err := c.do(ctx, call{method: "PUT", path: integrationsPath(product) + "/" + pathEscape(id), json: in}, &out); err != nil {
		return nil, err
	}
	return &out.Integration, nil
}

// DeleteIntegration is DELETE /v1/integrations/{id} (or the product's).
func (c *Client) DeleteIntegration(ctx context.Context, product, id string) error {
	return c.do(ctx, call{method: "DELETE", path: integrationsPath(product) + "/" + pathEscape(id)}, nil)
}

// IntegrationTest is the answer of TestIntegration.
type IntegrationTest struct {
	// Pass is true when the target answered 2xx.
	Pass bool `json:"pass"`
	// Data is the target's answer body, nil when none.
	Data *string `json:"data"`
	// Error says why the test failed.
	Error string `json:"error,omitempty"`
}

// TestIntegration is POST /v1/integrations/{id}/test (or the product's):
// the server sends a test event to the target now.
func (c *Client) TestIntegration(ctx context.Context, product, id string) (*IntegrationTest, error) {
	var out IntegrationTest
	if err := c.do(ctx, call{method: "POST", path: integrationsPath(product) + "/" + pathEscape(id) + "/test"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IntegrationDeliveries is GET /v1/integrations/{id}/deliveries (or the
// product's), a Wick extension: the newest entries of the delivery log.
func (c *Client) IntegrationDeliveries(ctx context.Context, product, id string) ([]Delivery, error) {
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
	}
	err := c.do(ctx, call{method: "GET", path: integrationsPath(product) + "/" + pathEscape(id) + "/deliveries"}, &out)
	return out.Deliveries, err
}
