package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/server/servertest"
	"github.com/wick-cloud/wick/sdk/cloud"
)

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// TestSignInAgainstWick walks the app's sign-in against a real Wick server
// the way the page's script and a browser do it, without a browser: the
// app's config, Wick's sign-in and consent forms (with their cookie), the
// redirect back to the app with code, state and iss, and the exchange with
// the verifier and no secret, from the app's origin (CORS).
func TestSignInAgainstWick(t *testing.T) {
	wick := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var app http.Handler
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { app.ServeHTTP(w, r) }))
	defer appSrv.Close()
	redirect := appSrv.URL + "/callback"
	client, err := wick.Login(t).CreateClient(ctx, "", cloud.NewClient{Name: "Lamp App", Type: "web", RedirectURI: redirect})
	if err != nil {
		t.Fatal(err)
	}
	if app, err = newHandler(Config{Listen: strings.TrimPrefix(appSrv.URL, "http://"), Wick: wick.API,
		ClientID: client.ID, RedirectURI: redirect}); err != nil {
		t.Fatal(err)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(method, u string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Origin", appSrv.URL)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	fields := func(page string) url.Values {
		v := url.Values{}
		for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
			v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		return v
	}

	// What the page reads first.
	_, body := fetch("GET", appSrv.URL+"/config.json", nil)
	var cfg pageConfig
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		t.Fatal(err)
	}

	// "Sign in with Wick": a verifier, its S256 challenge, a state.
	raw := make([]byte, 32)
	rand.Read(raw)
	verifier := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {cfg.ClientID}, "redirect_uri": {cfg.RedirectURI},
		"state": {"tab-42"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, page := fetch("GET", cfg.Wick+"/oauth/authorize?"+q.Encode(), nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "Lamp App") {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}
	form := fields(page)
	form.Set("username", servertest.Owner)
	form.Set("password", servertest.OwnerPassword)
	resp, page = fetch("POST", cfg.Wick+"/oauth/authorize", form)
	form = fields(page)
	if resp.StatusCode != 200 || form.Get("step") != "consent" {
		t.Fatalf("consent page: %d %s", resp.StatusCode, page)
	}
	form.Set("action", "allow")
	resp, _ = fetch("POST", cfg.Wick+"/oauth/authorize", form)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	back := loc.Query()
	if back.Get("state") != "tab-42" || back.Get("iss") != cfg.Wick {
		t.Fatalf("state %q, iss %q", back.Get("state"), back.Get("iss"))
	}

	// The app serves its page at the redirect URI; the page exchanges the code.
	if resp, page := fetch("GET", loc.String(), nil); resp.StatusCode != 200 || !strings.Contains(page, "/app.js") {
		t.Fatalf("callback page: %d", resp.StatusCode)
	}
	resp, body = fetch("POST", cfg.Wick+"/oauth/token", url.Values{"grant_type": {"authorization_code"},
		"code": {back.Get("code")}, "redirect_uri": {cfg.RedirectURI}, "code_verifier": {verifier}, "client_id": {cfg.ClientID}})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("exchange: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken != "" {
		t.Fatalf("token answer %s", body)
	}
	me, err := cloud.New(cfg.Wick, tok.AccessToken).GetUser(ctx)
	if err != nil || me.Username != servertest.Owner {
		t.Fatalf("GET /v1/user = %+v, %v", me, err)
	}
}
