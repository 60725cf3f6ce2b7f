package sim

import (
	"context"
	"encoding/json"
	"errors"
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
	return c.send(ctx, op, http.MethodPost, path, form)
}

// send sends a request with form as its body (none when nil) and returns
// an *APIError for any non-2xx answer, or a 2xx one whose JSON has
// "error".
func (c *apiClient) send(ctx context.Context, op, method, path string, form url.Values) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("sim: %s: %w", op, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "wick-sim")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("sim: %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return &APIError{Op: op, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	// Every 2xx of the Particle API carries JSON; one with "error" failed.
	var v struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(b, &v) == nil && v.Error != nil {
		return &APIError{Op: op, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return nil
}

// provision registers a device's public key (PEM) as `particle keys send`
// does: POST /v1/provisioning/{id} with publicKey and algorithm (rsa, or
// ecc for a Gen 3 P-256 key;
// docs/particle-protocol.md#how-the-cloud-learns-a-device-key), and
// product_id when product is set. Provisioning by a user claims a device
// that has neither owner nor product to that user; with unowned, the device
// is then released again (DELETE /v1/devices/{id}), so that a claim code
// decides its owner.
func (c *apiClient) provision(ctx context.Context, id string, publicKeyPEM []byte, algorithm, product string, unowned bool) error {
	form := url.Values{
		"publicKey": {string(publicKeyPEM)},
		"algorithm": {algorithm},
		"filename":  {"wick-sim"},
	}
	if product != "" {
		form.Set("product_id", product)
	}
	if err := c.send(ctx, "provision "+id, http.MethodPost, "/v1/provisioning/"+id, form); err != nil {
		return err
	}
	if !unowned {
		return nil
	}
	err := c.send(ctx, "release "+id, http.MethodDelete, "/v1/devices/"+id, nil)
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound) {
		// Not the token owner's device: provisioning did not claim it
		// (it is in a product, or unowned already), so it is not ours to
		// release.
		return nil
	}
	return err
}

// claim claims an online device to the token's owner: POST /v1/devices
// with id (docs/particle-api.md#claiming-a-device-by-id).
func (c *apiClient) claim(ctx context.Context, id string) error {
	return c.postForm(ctx, "claim "+id, "/v1/devices", url.Values{"id": {id}})
}
