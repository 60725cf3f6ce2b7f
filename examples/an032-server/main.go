// Command an032-server is the "simple server" of Particle app note AN032
// written in Go with the cloud SDK (github.com/wick-cloud/wick/sdk/cloud):
// a public page with two buttons that switches a device's LED without
// showing the visitor any access token. The server keeps the token and the
// device ID; the page only ever talks to this server, which turns
// POST /led into a call of the device's cloud function "led".
//
//	WICK_URL=http://127.0.0.1:8080 WICK_TOKEN=… WICK_DEVICE_ID=… \
//	    go run ./examples/an032-server --listen 127.0.0.1:3000
//
// See examples/README.md.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wick-cloud/wick/examples/internal/envflag"
	"github.com/wick-cloud/wick/sdk/cloud"
)

//go:embed page.html
var pageFS embed.FS

// maxBody caps the size of a POST /led body.
const maxBody = 1 << 10

// callTimeout bounds one function call: the cloud waits for the device.
const callTimeout = 30 * time.Second

// Config is what the server needs; flags and the environment fill it.
type Config struct {
	// Listen is the HOST:PORT the page is served on.
	Listen string
	// URL is the Wick (or Particle) API base URL.
	URL string
	// Token is the access token that may call the device's functions.
	Token string
	// DeviceID is the device whose "led" function the page switches.
	DeviceID string
}

// parseConfig reads flags from args, with defaults from getenv.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := envflag.New("an032-server", getenv)
	fs.String(&c.Listen, "listen", "LISTEN", "127.0.0.1:3000", "HOST:PORT to serve the page on")
	fs.String(&c.URL, "url", "WICK_URL", "http://127.0.0.1:8080", "API base URL")
	fs.String(&c.Token, "token", "WICK_TOKEN", "", "access token; prefer the environment")
	fs.String(&c.DeviceID, "device-id", "WICK_DEVICE_ID", "", "device ID")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("an032-server: %w", err)
	}
	switch {
	case c.Token == "":
		return Config{}, errors.New("an032-server: no access token (WICK_TOKEN or --token)")
	case c.DeviceID == "":
		return Config{}, errors.New("an032-server: no device ID (WICK_DEVICE_ID or --device-id)")
	}
	return c, nil
}

// ledResult is the JSON answer of POST /led.
type ledResult struct {
	OK          bool   `json:"ok"`
	ReturnValue *int32 `json:"return_value,omitempty"`
	Error       string `json:"error,omitempty"`
}

// NewHandler serves the page at GET / and turns POST /led into a call of
// function "led" on deviceID through c, which holds the token. Only the
// arguments "on" and "off" are passed on: a public page decides what an
// anonymous visitor may ask of the device.
func NewHandler(c *cloud.Client, deviceID string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page, _ := pageFS.ReadFile("page.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("POST /led", func(w http.ResponseWriter, r *http.Request) {
		arg, err := ledArg(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, ledResult{Error: err.Error()})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
		defer cancel()
		res, err := c.CallFunction(ctx, deviceID, "led", arg)
		if err != nil {
			log.Warn("led call failed", "arg", arg, "err", err)
			writeJSON(w, http.StatusBadGateway, ledResult{Error: deviceError(err)})
			return
		}
		writeJSON(w, http.StatusOK, ledResult{OK: true, ReturnValue: &res.ReturnValue})
	})
	return mux
}

// ledArg reads the argument of POST /led: a JSON body {"arg":"on"} as the
// app note's page sends, or a form field arg.
func ledArg(r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	var arg string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body struct {
			Arg string `json:"arg"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return "", errors.New("body is not a JSON object with arg")
		}
		arg = body.Arg
	} else {
		if err := r.ParseForm(); err != nil {
			return "", errors.New("body is not a form")
		}
		arg = r.PostForm.Get("arg")
	}
	if arg != "on" && arg != "off" {
		return "", errors.New(`arg must be "on" or "off"`)
	}
	return arg, nil
}

// deviceError describes a failed call for the page without the details of
// the server's configuration.
func deviceError(err error) string {
	switch {
	case cloud.IsUnauthorized(err):
		return "the server's access token was refused"
	case cloud.IsForbidden(err), cloud.IsNotFound(err):
		return "the device is not reachable with the server's token"
	case errors.Is(err, context.DeadlineExceeded):
		return "the device did not answer in time"
	}
	var ce *cloud.Error
	if errors.As(err, &ce) {
		if ce.Code != "" {
			return "device call failed: " + ce.Code
		}
		return fmt.Sprintf("device call failed: HTTP %d", ce.StatusCode)
	}
	return "the cloud is not reachable"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	srv := &http.Server{
		Addr:              cfg.Listen,
		Handler:           NewHandler(cloud.New(cfg.URL, cfg.Token), cfg.DeviceID, log),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "url", "http://"+cfg.Listen+"/", "device", cfg.DeviceID)
	select {
	case err := <-errc:
		return fmt.Errorf("an032-server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
