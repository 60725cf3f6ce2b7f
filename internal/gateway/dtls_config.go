package gateway

import (
	"fmt"

	"github.com/wick-cloud/wick/internal/p256"
	"github.com/wick-cloud/wick/protocol/dtls"
)

// configureDTLS finishes the Gen 3 handshake config (docs/dtls.md#speed):
// parsed device keys are kept across handshakes, and the openssl build
// signs ServerKeyExchange with OpenSSL (package p256).
func configureDTLS(cfg *dtls.ServerConfig) error {
	cfg.Keys = &dtls.KeyCache{}
	if err := p256.Configure(cfg); err != nil {
		return fmt.Errorf("gateway: udp key: %w", err)
	}
	return nil
}
