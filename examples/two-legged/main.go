// Command two-legged is a back end for a product's web or mobile app in
// the "two-legged" arrangement of Particle's authentication guide, written
// with the cloud SDK (github.com/wick-cloud/wick/sdk/cloud): the back end
// keeps its own user table (argon2id password hashes), creates a shadow
// customer without a password in the product at each sign-up, mints a
// fresh customer-scoped token at each log-in with the product client's
// credentials, and hands out claim codes for the customer's device setup.
// The client secret and the customers' tokens stay on this server; the
// browser holds only a session cookie.
//
//	WICK_URL=http://127.0.0.1:8080 WICK_PRODUCT=lamp \
//	WICK_CLIENT_ID=… WICK_CLIENT_SECRET=… \
//	    go run ./examples/two-legged --users users.json --listen 127.0.0.1:3001
//
// See examples/README.md.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wick-cloud/wick/examples/internal/envflag"
)

//go:embed page.html
var page []byte

// options are the command's settings.
type options struct {
	listen string
	users  string
	cfg    Config
}

// parseOptions reads flags from args, with defaults from getenv.
func parseOptions(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := envflag.New("two-legged", getenv)
	fs.String(&o.listen, "listen", "LISTEN", "127.0.0.1:3001", "HOST:PORT to serve on")
	fs.String(&o.users, "users", "USERS_FILE", "", `JSON file of the user table; "" keeps it in memory`)
	fs.String(&o.cfg.API, "url", "WICK_URL", "http://127.0.0.1:8080", "API base URL")
	fs.String(&o.cfg.Product, "product", "WICK_PRODUCT", "", "product ID or slug")
	fs.String(&o.cfg.ClientID, "client-id", "WICK_CLIENT_ID", "", "the product's OAuth client ID")
	fs.String(&o.cfg.ClientSecret, "client-secret", "WICK_CLIENT_SECRET", "", "its secret; prefer the environment")
	fs.BoolVar(&o.cfg.SecureCookie, "secure-cookie", false, "mark the session cookie Secure (behind HTTPS)")
	if err := fs.Parse(args); err != nil {
		return options{}, fmt.Errorf("two-legged: %w", err)
	}
	switch {
	case o.cfg.Product == "":
		return options{}, errors.New("two-legged: no product (WICK_PRODUCT or --product)")
	case o.cfg.ClientID == "" || o.cfg.ClientSecret == "":
		return options{}, errors.New("two-legged: no client credentials (WICK_CLIENT_ID and WICK_CLIENT_SECRET)")
	}
	return o, nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o, err := parseOptions(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, o options, log *slog.Logger) error {
	users, err := OpenUsers(o.users)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              o.listen,
		Handler:           NewBackend(o.cfg, users, log).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "url", "http://"+o.listen+"/", "product", o.cfg.Product)
	select {
	case err := <-errc:
		return fmt.Errorf("two-legged: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
