package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		want    Config
		wantErr string
	}{
		{"flags", []string{"--client-id", "web-1234", "--wick", "http://127.0.0.1:9000/", "--listen", "127.0.0.1:7000"}, env(),
			Config{Listen: "127.0.0.1:7000", Wick: "http://127.0.0.1:9000", ClientID: "web-1234", RedirectURI: "http://127.0.0.1:7000/callback"}, ""},
		{"environment", nil, env("WICK_CLIENT_ID", "c-1", "WICK_URL", "https://wick.example.com", "WICK_REDIRECT_URI", "https://app.example.com/cb"),
			Config{Listen: "127.0.0.1:8090", Wick: "https://wick.example.com", ClientID: "c-1", RedirectURI: "https://app.example.com/cb"}, ""},
		{"no client", nil, env(), Config{}, "--client-id"},
		{"bad wick URL", []string{"--client-id", "c", "--wick", "ftp://x"}, env(), Config{}, "not an http(s) URL"},
		{"unknown flag", []string{"--nope"}, env(), Config{}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	c := Config{Listen: "127.0.0.1:8090", Wick: "http://127.0.0.1:8080", ClientID: "web-1234", RedirectURI: "http://127.0.0.1:8090/signed-in"}
	h, err := newHandler(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/", "/signed-in?code=abc&state=x"} {
		resp, body := get(path)
		if resp.StatusCode != 200 || !strings.Contains(body, `id="signIn"`) {
			t.Errorf("GET %s = %d %.80q", path, resp.StatusCode, body)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"connect-src 'self' http://127.0.0.1:8080", "frame-ancestors 'none'", "script-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", path, resp.Header)
		}
	}
	resp, body := get("/config.json")
	var pc pageConfig
	if err := json.Unmarshal([]byte(body), &pc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("config: %d %s", resp.StatusCode, body)
	}
	if pc != (pageConfig{Wick: c.Wick, ClientID: c.ClientID, RedirectURI: c.RedirectURI}) {
		t.Errorf("config = %+v", pc)
	}
	if strings.Contains(body, "secret") {
		t.Errorf("the page's config holds a secret: %s", body)
	}
	if resp, body := get("/app.js"); resp.StatusCode != 200 || !strings.Contains(body, "code_challenge_method: 'S256'") {
		t.Errorf("app.js = %d", resp.StatusCode)
	}
	if resp, _ := get("/nope"); resp.StatusCode != 404 {
		t.Errorf("GET /nope = %d", resp.StatusCode)
	}
	post, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d", post.StatusCode)
	}
}
