package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiClient calls the Wick REST API for the simulator: provisioning device
// keys and claiming devices.
type apiClient struct {
	base  string // without trailing slash
	token string
	http  *http.Client
}

func newAPIClient(base, token string, concurrency int) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	return &apiClient{base: base, token: token, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// APIError is an API call answered with a non-2xx status.
type APIError struct {
	Op     string
	Status int
	Body   string
}

// Error returns "sim: provision: HTTP 404: {...}".
func (e *APIError) Error() string {
	return fmt.Sprintf("sim: %s: HTTP %d: %s", e.Op, e.Status, e.Body)
}

// postForm sends a form POST to path and returns an *APIError for any
// non-2xx answer.
func (c *apiClient) postForm(ctx context.Context, op, path string, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("sim: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "wick-sim")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("sim: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return &APIError{Op: op, Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	// Every 2xx of the Particle API carries JSON; one with "error" failed.
	var v struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && v.Error != nil {
		return &APIError{Op: op, Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	return nil
}

// provision registers a device's public key (PEM) as `particle keys send`
// does: POST /v1/provisioning/{id} with publicKey and algorithm=rsa
// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key).
func (c *apiClient) provision(ctx context.Context, id string, publicKeyPEM []byte) error {
	return c.postForm(ctx, "provision "+id, "/v1/provisioning/"+id, url.Values{
		"publicKey": {string(publicKeyPEM)},
		"algorithm": {"rsa"},
		"filename":  {"wick-sim"},
	})
}

// claim claims an online device to the token's owner: POST /v1/devices
// with id (docs/particle-api.md#claiming-a-device-by-id).
func (c *apiClient) claim(ctx context.Context, id string) error {
	return c.postForm(ctx, "claim "+id, "/v1/devices", url.Values{"id": {id}})
}
