//go:build openssl && cgo

package p256

func init() { opensslKeygens = keygens }
