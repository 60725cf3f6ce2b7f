package sim

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/wick-cloud/wick/sdk/cloud"
)

// apiClient calls the Wick REST API for the simulator through sdk/cloud:
// provisioning device keys and claiming devices.
type apiClient struct {
	c *cloud.Client
}

func newAPIClient(base, token string, concurrency int) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	c := cloud.New(base, token)
	c.HTTPClient = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	c.UserAgent = "wick-sim"
	return &apiClient{c: c}
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
	err := c.c.ProvisionDeviceWith(ctx, id, publicKeyPEM, cloud.ProvisionOptions{
		Product: product, Algorithm: algorithm, Filename: "wick-sim"})
	if err != nil {
		return fmt.Errorf("sim: provision %s: %w", id, err)
	}
	if !unowned {
		return nil
	}
	err = c.c.UnclaimDevice(ctx, id)
	if cloud.IsForbidden(err) || cloud.IsNotFound(err) {
		// Not the token owner's device: provisioning did not claim it
		// (it is in a product, or unowned already), so it is not ours to
		// release.
		return nil
	}
	if err != nil {
		return fmt.Errorf("sim: release %s: %w", id, err)
	}
	return nil
}

// claim claims an online device to the token's owner: POST /v1/devices
// with id (docs/particle-api.md#claiming-a-device-by-id).
func (c *apiClient) claim(ctx context.Context, id string) error {
	if _, err := c.c.ClaimDevice(ctx, id); err != nil {
		return fmt.Errorf("sim: claim %s: %w", id, err)
	}
	return nil
}
