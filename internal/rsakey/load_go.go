//go:build !(openssl && cgo)

package rsakey

import (
	"crypto/rsa"

	"github.com/wick-cloud/wick/protocol"
)

// Implementation names what Load returns in this build.
const Implementation = NameGo

// load returns priv itself: this build has only crypto/rsa.
func load(priv *rsa.PrivateKey) (protocol.ServerKey, error) {
	return priv, nil
}
