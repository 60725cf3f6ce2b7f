// Package console serves Wick's web console: a single-page application of
// static files (HTML, CSS and JavaScript modules) embedded in the binary.
// The console talks to the server only through the public REST API and its
// event streams, as any other client does; this package holds no state and
// no API logic. Handler serves the files under /console/, and Mount puts it
// in front of the API so that browsers opening "/" land on the console
// while API clients keep the API's JSON answers for every other path.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// files are the console's assets. An embedded file system is the one kind
// of package-level variable go:embed allows; it is read-only.
//
//go:embed all:assets
var files embed.FS

// Prefix is the path under which the console is served.
const Prefix = "/console/"

// ContentSecurityPolicy is sent with every console response. The console
// has no inline scripts or styles and loads nothing from other origins, so
// the policy admits only its own files and the API of the same origin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the embedded console. Build it with New.
type Handler struct {
	log     *slog.Logger
	assets  map[string]asset // path relative to Prefix ("index.html", "js/app.js")
	modTime time.Time
}

// New loads the embedded assets and returns their handler. It fails only
// when the binary was built without them.
func New(log *slog.Logger) (*Handler, error) {
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		return nil, fmt.Errorf("console: assets: %w", err)
	}
	return newHandler(sub, log)
}

// newHandler builds a handler over any file system (tests use fstest).
func newHandler(fsys fs.FS, log *slog.Logger) (*Handler, error) {
	h := &Handler{log: log, assets: map[string]asset{}, modTime: time.Now()}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // the system's MIME table may lack or differ on these
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".html":
			ctype = "text/html; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		case ".json", ".webmanifest":
			ctype = "application/manifest+json"
		}
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		h.assets[p] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: load assets: %w", err)
	}
	if _, ok := h.assets["index.html"]; !ok {
		return nil, fmt.Errorf("console: assets have no index.html")
	}
	return h, nil
}

// Paths lists the served asset paths relative to Prefix, for tests and
// diagnostics.
func (h *Handler) Paths() []string {
	out := make([]string, 0, len(h.assets))
	for p := range h.assets {
		out = append(out, p)
	}
	return out
}

// setHeaders sets the security headers of every console response.
func setHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

// ServeHTTP serves one file under Prefix. "/console/" and any path without
// a file extension (the console's own pages) serve index.html; the
// application routes in the browser. Only GET and HEAD are allowed.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setHeaders(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.Redirect(w, r, Prefix, http.StatusFound)
		return
	}
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if rel == "" || rel == "." || path.Ext(rel) == "" {
		rel = "index.html"
	}
	a, ok := h.assets[rel]
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	// Revalidate every time: a new binary serves new files under the same
	// names, and a 304 costs one round trip.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, rel, h.modTime, bytes.NewReader(a.body))
}

// Mount returns a handler that sends the console's paths to console and
// everything else to api: "/console" and "/console/..." are the console's;
// "/" is redirected to the console for a GET or HEAD from a browser (one
// that accepts text/html) and left to the API otherwise, so API clients
// see the API's JSON answers for "/" and every unknown path as before.
func Mount(api http.Handler, console *Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, Prefix):
			console.ServeHTTP(w, r)
		case p == "/console" || (p == "/" && wantsHTML(r)):
			setHeaders(w)
			http.Redirect(w, r, Prefix, http.StatusFound)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// wantsHTML reports whether r is a browser's page load: GET or HEAD with
// text/html in Accept.
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
