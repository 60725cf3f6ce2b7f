package auth

import "fmt"

// PurposeWebhookSigning is the purpose prefix of a webhook's HMAC signing
// key: the API seals it for PurposeWebhookSigning + the webhook's ID, so a
// sealed key copied onto another hook does not open.
const PurposeWebhookSigning = "webhook-signing:"

// PurposeWebhookCredentials is the purpose prefix of a webhook's sealed
// basic-auth credentials and headers (store.WebhookSettings.SealedCredentials),
// sealed for PurposeWebhookCredentials + the webhook's ID.
const PurposeWebhookCredentials = "webhook-credentials:"

// sealPurposePrefix separates the additional data of SealSecret from that
// of other sealed secrets (TOTP secrets are bound to the bare user ID), so
// no purpose string can open a secret sealed for another use.
const sealPurposePrefix = "wick-secret/"

// SealSecret encrypts plain with the server's secret key, bound to
// purpose, for storage at rest. OpenSecret with the same purpose reverses
// it.
func (s *Service) SealSecret(plain []byte, purpose string) ([]byte, error) {
	sealed, err := Seal(s.cfg.SecretKey, plain, []byte(sealPurposePrefix+purpose))
	if err != nil {
		return nil, fmt.Errorf("auth: seal secret for %q: %w", purpose, err)
	}
	return sealed, nil
}

// OpenSecret decrypts data made by SealSecret for the same purpose. Data
// sealed for another purpose, under another key, or altered fails with an
// error matching ErrSealed.
func (s *Service) OpenSecret(sealed []byte, purpose string) ([]byte, error) {
	plain, err := Open(s.cfg.SecretKey, sealed, []byte(sealPurposePrefix+purpose))
	if err != nil {
		return nil, fmt.Errorf("auth: open secret for %q: %w", purpose, err)
	}
	return plain, nil
}
