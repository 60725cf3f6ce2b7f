//go:build tools

// Package wick pins the module's dependencies before the code that uses them
// exists; see docs/dependencies.md.
package wick

import (
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/pquerna/otp/totp"
	_ "golang.org/x/crypto/argon2"
	_ "modernc.org/sqlite"
)
