//go:build !(openssl && cgo)

package p256

import "github.com/wick-cloud/wick/protocol/dtls"

// Implementation names what Configure installs in this build.
const Implementation = NameGo

// configure leaves cfg to Go's crypto: this build has no other.
func configure(*dtls.ServerConfig) error { return nil }
