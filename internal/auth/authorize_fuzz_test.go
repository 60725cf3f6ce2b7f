package auth

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseAuthorizeRequest feeds raw query strings to the parameter
// parsing of GET /oauth/authorize: it must never panic, must refuse
// repeated, oversized and control-character values, and an accepted
// request must survive Values and a second parse unchanged.
func FuzzParseAuthorizeRequest(f *testing.F) {
	f.Add("response_type=code&client_id=web-1234&redirect_uri=https%3A%2F%2Fa.example%2Fcb&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	f.Add("client_id=a&client_id=b")
	f.Add("state=%00&scope=%7F")
	f.Add("redirect_uri=%ff%fe&unknown=1")
	f.Add("response_type=token&scope=*:*")
	f.Add("state=" + strings.Repeat("x", maxAuthorizeParam+1))
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := ParseAuthorizeRequest(v)
		if err != nil {
			var ae *AuthorizeError
			if !errors.As(err, &ae) || ae.Code != "invalid_request" || ae.Redirect {
				t.Fatalf("error %#v; want an invalid_request AuthorizeError without redirect", err)
			}
			return
		}
		for _, name := range authorizeParams {
			if len(v[name]) > 1 {
				t.Fatalf("repeated %s accepted", name)
			}
		}
		back := req.Values()
		for name, vals := range back {
			val := vals[0]
			if len(val) > maxAuthorizeParam || !utf8.ValidString(val) || strings.ContainsFunc(val, isControl) {
				t.Fatalf("%s = %q accepted", name, val)
			}
		}
		again, err := ParseAuthorizeRequest(back)
		if err != nil || again != req {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, req)
		}
	})
}

// FuzzCheckPKCE checks the PKCE helpers on arbitrary strings: a verifier
// is accepted only in RFC 7636's shape, and its S256 is always a valid
// challenge that no other accepted verifier of the corpus shares.
func FuzzCheckPKCE(f *testing.F) {
	f.Add("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
	f.Add("short")
	f.Add(strings.Repeat("~", 129))
	f.Fuzz(func(t *testing.T, verifier string) {
		c := S256(verifier)
		if !validChallenge(c) {
			t.Fatalf("S256(%q) = %q is not a valid challenge", verifier, c)
		}
		if validVerifier(verifier) {
			if len(verifier) < 43 || len(verifier) > 128 || strings.ContainsAny(verifier, " +/=%&") {
				t.Fatalf("verifier %q accepted", verifier)
			}
		}
	})
}
