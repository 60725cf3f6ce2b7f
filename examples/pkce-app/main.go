// Command pkce-app serves a browser application that signs its users in
// with Wick's browser sign-in (the OAuth 2.0 authorization-code flow with
// PKCE) instead of a password form: the page never sees a password, and no
// secret is kept anywhere, since a page cannot keep one.
//
// Register a web client whose redirect_uri is this server's /callback, then
// run the server with its client ID:
//
//	go run ./examples/pkce-app --wick http://127.0.0.1:8080 --client-id CLIENT_ID
//
// and open http://127.0.0.1:8090/. A product's web client signs in the
// product's customers the same way. See examples/README.md.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wick-cloud/wick/examples/internal/envflag"
)

//go:embed static
var staticFS embed.FS

// Config is what the server needs; flags and the environment fill it.
type Config struct {
	// Listen is the HOST:PORT the application is served on.
	Listen string
	// Wick is the base URL of the Wick server that signs users in.
	Wick string
	// ClientID names the Wick web client of this application.
	ClientID string
	// RedirectURI is the client's registered redirect_uri, exactly as
	// registered; by default http://LISTEN/callback.
	RedirectURI string
}

// parseConfig reads flags from args, with defaults from getenv.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := envflag.New("pkce-app", getenv)
	fs.String(&c.Listen, "listen", "PKCE_APP_LISTEN", "127.0.0.1:8090", "HOST:PORT to serve the application on")
	fs.String(&c.Wick, "wick", "WICK_URL", "http://127.0.0.1:8080", "Wick base URL")
	fs.String(&c.ClientID, "client-id", "WICK_CLIENT_ID", "", "the web client's ID")
	fs.String(&c.RedirectURI, "redirect-uri", "WICK_REDIRECT_URI", "", "the client's registered redirect_uri (default http://LISTEN/callback)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("pkce-app: %w", err)
	}
	if c.ClientID == "" {
		return Config{}, errors.New("pkce-app: --client-id (or WICK_CLIENT_ID) is required")
	}
	u, err := url.Parse(c.Wick)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Config{}, fmt.Errorf("pkce-app: --wick %q is not an http(s) URL", c.Wick)
	}
	c.Wick = strings.TrimRight(c.Wick, "/")
	if c.RedirectURI == "" {
		c.RedirectURI = "http://" + c.Listen + "/callback"
	}
	return c, nil
}

// pageConfig is GET /config.json: what the page needs to start a sign-in.
type pageConfig struct {
	Wick        string `json:"wick"`
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
}

// newHandler serves the page at / and at the redirect URI's path, its
// script and style, and /config.json. Every answer forbids framing and
// sends no Referer (the callback's URL holds the code until the page
// removes it); the page may talk only to this server and to Wick.
func newHandler(c Config) (http.Handler, error) {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		return nil, err
	}
	cb, err := url.Parse(c.RedirectURI)
	if err != nil {
		return nil, fmt.Errorf("pkce-app: redirect URI: %w", err)
	}
	callback := cb.Path
	if callback == "" {
		callback = "/"
	}
	cfg, err := json.Marshal(pageConfig{Wick: c.Wick, ClientID: c.ClientID, RedirectURI: c.RedirectURI})
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' " + c.Wick +
		"; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/", callback:
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			w.Write(index)
		case "/config.json":
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.Write(cfg)
		case "/index.html":
			http.Redirect(w, r, "/", http.StatusMovedPermanently)
		default:
			files.ServeHTTP(w, r)
		}
	}), nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	h, err := newHandler(c)
	if err != nil {
		log.Error("pkce-app: start", "err", err)
		os.Exit(1)
	}
	srv := &http.Server{Addr: c.Listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Info("pkce-app: serving", "url", "http://"+c.Listen+"/", "wick", c.Wick, "client_id", c.ClientID, "redirect_uri", c.RedirectURI)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("pkce-app: serve", "err", err)
		os.Exit(1)
	}
}
