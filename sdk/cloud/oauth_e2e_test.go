package cloud_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/sdk/cloud"
)

var (
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	tickedScope = regexp.MustCompile(`<input type="checkbox" name="grant_scope" value="([^"]*)" checked>`)
)

// signInPage drives Wick's sign-in pages as a browser would: it opens
// authURL, posts the password form and, when the consent page comes,
// allows. It returns the redirect's query and whether consent was asked.
func signInPage(t *testing.T, authURL, username, password string) (url.Values, bool) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	read := func(resp *http.Response, err error) (*http.Response, url.Values) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		f := url.Values{}
		for _, m := range hiddenField.FindAllStringSubmatch(string(b), -1) {
			f.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		// The consent page's scope boxes, left ticked.
		for _, m := range tickedScope.FindAllStringSubmatch(string(b), -1) {
			f.Add("grant_scope", html.UnescapeString(m[1]))
		}
		return resp, f
	}
	base := authURL[:strings.Index(authURL, "/oauth/authorize")]
	_, f := read(hc.Get(authURL))
	f.Set("username", username)
	f.Set("password", password)
	resp, f := read(hc.PostForm(base+"/oauth/authorize", f))
	consent := false
	if resp.StatusCode == http.StatusOK && f.Get("step") == "consent" {
		consent = true
		f.Set("action", "allow")
		resp, _ = read(hc.PostForm(base+"/oauth/authorize", f))
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in ended with %d (step %q)", resp.StatusCode, f.Get("step"))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query(), consent
}

// TestBrowserSignInFlow: AuthorizeURL, ExchangeCode for a public client
// with narrow scopes, remembered consent, Grants, RevokeGrant and the
// metadata, against a real server.
func TestBrowserSignInFlow(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 60*time.Second)
	const redirect = "http://127.0.0.1:1/callback"
	cl, err := owner.CreateClient(ctx, "", cloud.NewClient{Name: "Go App", Type: "web", RedirectURI: redirect})
	if err != nil {
		t.Fatal(err)
	}
	anon := cloud.New(w.api, "")
	md, err := anon.GetAuthServerMetadata(ctx)
	if err != nil || md.Issuer != w.api || md.TokenEndpoint != w.api+"/oauth/token" || md.RevocationEndpoint != "" {
		t.Fatalf("metadata = %+v, %v", md, err)
	}

	var tokens []string
	for i, wantConsent := range []bool{true, false} {
		verifier, challenge, err := cloud.NewPKCE()
		if err != nil {
			t.Fatal(err)
		}
		q, consent := signInPage(t, anon.AuthorizeURL(cl.ID, redirect, "s1", challenge, "devices:list products:list"), ownerEmail, ownerPassword)
		if consent != wantConsent || q.Get("state") != "s1" || q.Get("iss") != md.Issuer || q.Get("error") != "" {
			t.Fatalf("sign-in %d: consent %v (want %v), redirect %v", i, consent, wantConsent, q)
		}
		tok, err := anon.ExchangeCode(ctx, q.Get("code"), redirect, verifier, &cloud.TokenOptions{ClientID: cl.ID})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Scope != "devices:list products:list" || tok.RefreshToken != "" {
			t.Fatalf("token %d: scope %q, refresh %q; want the two scopes and no refresh token", i, tok.Scope, tok.RefreshToken)
		}
		tokens = append(tokens, tok.AccessToken)
	}
	if _, err := anon.WithToken(tokens[0]).ListProducts(ctx); err != nil {
		t.Errorf("products:list token: %v", err)
	}

	grants, err := owner.Grants(ctx)
	if err != nil || len(grants) != 1 || grants[0].ClientID != cl.ID || len(grants[0].Scopes) != 2 || grants[0].Scopes[0].Description == "" {
		t.Fatalf("Grants = %+v, %v", grants, err)
	}
	if err := owner.RevokeGrant(ctx, cl.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if _, err := anon.WithToken(tok).ListProducts(ctx); !cloud.IsUnauthorized(err) {
			t.Errorf("a token of the revoked client: %v, want 401", err)
		}
	}
	if err := owner.RevokeGrant(ctx, cl.ID); !cloud.IsNotFound(err) {
		t.Errorf("second RevokeGrant: %v, want 404", err)
	}
}
