package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// FuzzCredentials feeds arbitrary bodies to the sign-up and log-in
// decoder and the address check: neither panics, and an accepted address
// is lower-case with one '@' that neither starts nor ends it.
func FuzzCredentials(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@b.c","password":"12345678"}`,
		`{"email":" A@B.C "}`,
		`{"email":`,
		`[]`,
		`{"email":"@","password":null}`,
	} {
		f.Add("application/json", s)
	}
	f.Add("text/plain", "email=a@b.c")
	f.Fuzz(func(t *testing.T, ct, body string) {
		req := httptest.NewRequest("POST", "/api/login", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		email, _, err := credentials(req)
		if err != nil {
			return
		}
		norm, err := normalizeEmail(email)
		if err != nil {
			return
		}
		at := strings.IndexByte(norm, '@')
		if norm != strings.ToLower(norm) || at < 1 || at == len(norm)-1 || len(norm) > 254 {
			t.Fatalf("normalizeEmail(%q) = %q", email, norm)
		}
	})
}

func TestDocComments(t *testing.T) { doccheck.Exported(t, doccheck.Sources(t)) }
