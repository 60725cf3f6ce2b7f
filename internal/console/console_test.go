package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/wick-cloud/wick/internal/api"
)

func newTestHandler(t *testing.T) *Handler {
	t.Helper()
	h, err := New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// apiStub stands for the API: it marks every request it receives.
var apiStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Test-API", "1")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, `{"ok":false,"error":"Not Found"}`)
})

func TestServedPaths(t *testing.T) {
	root := Mount(apiStub, newTestHandler(t))
	tests := []struct {
		name, method, path, accept string
		status                     int
		ctype                      string // prefix; "" for none
		location                   string
		api                        bool
		body                       string // substring
	}{
		{name: "index", method: "GET", path: "/console/", status: 200, ctype: "text/html", body: `<div id="app"`},
		{name: "page path serves index", method: "GET", path: "/console/devices/abc", status: 200, ctype: "text/html", body: `<div id="app"`},
		{name: "module", method: "GET", path: "/console/js/app.js", status: 200, ctype: "text/javascript", body: "import"},
		{name: "stylesheet", method: "GET", path: "/console/app.css", status: 200, ctype: "text/css"},
		{name: "icon", method: "GET", path: "/console/favicon.svg", status: 200, ctype: "image/svg+xml"},
		{name: "head", method: "HEAD", path: "/console/app.css", status: 200, ctype: "text/css"},
		{name: "missing asset", method: "GET", path: "/console/nope.js", status: 404},
		{name: "traversal stays inside", method: "GET", path: "/console/js/../../../go.mod", status: 404},
		{name: "post refused", method: "POST", path: "/console/", status: 405},
		{name: "bare console redirects", method: "GET", path: "/console", status: 302, location: "/console/"},
		{name: "browser at root redirects", method: "GET", path: "/", accept: "text/html,application/xhtml+xml", status: 302, location: "/console/"},
		{name: "API client at root gets the API", method: "GET", path: "/", accept: "application/json", status: 404, api: true, body: `"Not Found"`},
		{name: "no Accept at root gets the API", method: "GET", path: "/", status: 404, api: true},
		{name: "POST root is the API's", method: "POST", path: "/", accept: "text/html", status: 404, api: true},
		{name: "unknown API path", method: "GET", path: "/v2/anything", accept: "text/html", status: 404, api: true},
		{name: "console lookalike", method: "GET", path: "/consoles", accept: "text/html", status: 404, api: true},
		{name: "oauth", method: "GET", path: "/oauth/authorize", accept: "text/html", status: 404, api: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			w := httptest.NewRecorder()
			root.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.status, w.Body.String())
			}
			if got := w.Header().Get("X-Test-API") == "1"; got != tc.api {
				t.Fatalf("reached the API: %v, want %v", got, tc.api)
			}
			if !tc.api && w.Header().Get("Content-Security-Policy") != ContentSecurityPolicy {
				t.Errorf("CSP %q", w.Header().Get("Content-Security-Policy"))
			}
			if tc.api && w.Header().Get("Content-Security-Policy") != "" {
				t.Errorf("the console's CSP leaked onto an API answer")
			}
			if tc.ctype != "" && !strings.HasPrefix(w.Header().Get("Content-Type"), tc.ctype) {
				t.Errorf("Content-Type %q, want %q…", w.Header().Get("Content-Type"), tc.ctype)
			}
			if tc.location != "" && w.Header().Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", w.Header().Get("Location"), tc.location)
			}
			if tc.body != "" && !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("body lacks %q: %.200q", tc.body, w.Body.String())
			}
			if tc.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD answered a body")
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	root := Mount(apiStub, newTestHandler(t))
	w := httptest.NewRecorder()
	root.ServeHTTP(w, httptest.NewRequest("GET", "/console/", nil))
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-cache",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, directive) {
			t.Errorf("CSP lacks %q", directive)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-") {
		t.Errorf("CSP allows unsafe sources: %s", ContentSecurityPolicy)
	}
}

func TestETagRevalidation(t *testing.T) {
	root := Mount(apiStub, newTestHandler(t))
	w := httptest.NewRecorder()
	root.ServeHTTP(w, httptest.NewRequest("GET", "/console/app.css", nil))
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	r := httptest.NewRequest("GET", "/console/app.css", nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	root.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified {
		t.Fatalf("status %d, want 304", w.Code)
	}
}

// TestNoAPIRouteShadowed sends every route of the API's table through Mount,
// as a browser would (Accept: text/html), and checks that the API got each.
func TestNoAPIRouteShadowed(t *testing.T) {
	root := Mount(apiStub, newTestHandler(t))
	param := regexp.MustCompile(`\{[^}]+\}`)
	routes := api.Routes()
	if len(routes) < 50 {
		t.Fatalf("only %d API routes listed", len(routes))
	}
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		p := param.ReplaceAllString(pattern, "x")
		r := httptest.NewRequest(method, p, nil)
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		root.ServeHTTP(w, r)
		if w.Header().Get("X-Test-API") != "1" {
			t.Errorf("%s %s (as %s) did not reach the API: %d", method, pattern, p, w.Code)
		}
	}
}

// TestEmbeddedAssets checks that the binary carries the console: every file
// index.html and the modules refer to is embedded, and no asset needs a
// relaxed CSP (inline scripts, inline styles, event-handler attributes,
// innerHTML).
func TestEmbeddedAssets(t *testing.T) {
	h := newTestHandler(t)
	for _, want := range []string{"index.html", "app.css", "favicon.svg", "js/app.js", "js/api.js", "js/ui.js"} {
		if _, ok := h.assets[want]; !ok {
			t.Errorf("asset %s is not embedded", want)
		}
	}
	ref := regexp.MustCompile(`(?:src|href)="/console/([^"]+)"`)
	index := string(h.assets["index.html"].body)
	for _, m := range ref.FindAllStringSubmatch(index, -1) {
		if _, ok := h.assets[m[1]]; !ok {
			t.Errorf("index.html refers to %s, which is not embedded", m[1])
		}
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(index) || strings.Contains(index, "style=") ||
		regexp.MustCompile(`\son[a-z]+=`).MatchString(index) || strings.Contains(index, "<style") {
		t.Error("index.html has inline script, style or event handlers, which the CSP refuses")
	}
	imp := regexp.MustCompile(`(?m)^import [^'"]*['"](\.[^'"]+)['"]`)
	modules := 0
	for p, a := range h.assets {
		if path.Ext(p) != ".js" {
			continue
		}
		modules++
		src := string(a.body)
		for _, m := range imp.FindAllStringSubmatch(src, -1) {
			target := path.Join(path.Dir(p), m[1])
			if _, ok := h.assets[target]; !ok {
				t.Errorf("%s imports %s, which is not embedded", p, target)
			}
		}
		for _, bad := range []string{".innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage.setItem"} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
	}
	if modules < 5 {
		t.Errorf("only %d JavaScript modules embedded", modules)
	}
}

func TestNewNeedsIndex(t *testing.T) {
	_, err := newHandler(fstest.MapFS{"app.css": {Data: []byte("x")}}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "index.html") {
		t.Fatalf("err = %v, want a missing index.html", err)
	}
	h, err := newHandler(fstest.MapFS{"index.html": {Data: []byte("<p>")}, "a/b.js": {Data: []byte("x")}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	got := h.Paths()
	if len(got) != 2 {
		t.Fatalf("Paths() = %v", got)
	}
}

func BenchmarkServeAsset(b *testing.B) {
	h, err := New(slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	root := Mount(apiStub, h)
	r := httptest.NewRequest("GET", "/console/js/app.js", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		root.ServeHTTP(w, r)
	}
}

// FuzzMount checks, for any path and method, that Mount never panics, that
// the API gets every request outside the console's paths, and that the
// console serves only embedded files (or index.html, or a 404/405/302).
func FuzzMount(f *testing.F) {
	h, err := New(slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	root := Mount(apiStub, h)
	for _, p := range []string{"/", "/console", "/console/", "/console/js/app.js", "/console/../v1/devices", "/v1/devices", "/console/%2e%2e/x.js", "/consolex", "//console/"} {
		f.Add("GET", p, "text/html")
	}
	f.Add("POST", "/console/app.css", "")
	f.Fuzz(func(t *testing.T, method, p, accept string) {
		r, err := http.NewRequest(method, "http://wick.test/", nil)
		if err != nil {
			return
		}
		r.URL.Path = p
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		root.ServeHTTP(w, r)
		toAPI := w.Header().Get("X-Test-API") == "1"
		inConsole := strings.HasPrefix(p, Prefix) || p == "/console" || (p == "/" && wantsHTML(r))
		if inConsole == toAPI {
			t.Fatalf("%s %q: reached the API: %v", method, p, toAPI)
		}
		if !inConsole {
			return
		}
		switch w.Code {
		case http.StatusOK:
			body := w.Body.Bytes()
			found := method == http.MethodHead
			for _, a := range h.assets {
				if string(a.body) == string(body) {
					found = true
				}
			}
			if !found {
				t.Fatalf("%s %q: served something that is not an embedded file", method, p)
			}
		case http.StatusNotModified, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusFound, http.StatusRequestedRangeNotSatisfiable, http.StatusPartialContent, http.StatusPreconditionFailed:
		default:
			t.Fatalf("%s %q: status %d", method, p, w.Code)
		}
	})
}
