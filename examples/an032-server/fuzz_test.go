package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// FuzzLEDArg feeds arbitrary bodies to the POST /led decoder: it never
// panics, and passes on nothing but "on" and "off".
func FuzzLEDArg(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"arg":"on"}`},
		{"application/json", `{"arg":"off","x":1}`},
		{"application/json", `{"arg":`},
		{"application/x-www-form-urlencoded", "arg=on"},
		{"application/x-www-form-urlencoded", "arg=%zz"},
		{"", "arg=off&arg=on"},
	} {
		f.Add(s.ct, s.body)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		req := httptest.NewRequest("POST", "/led", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		arg, err := ledArg(req)
		if err == nil && arg != "on" && arg != "off" {
			t.Fatalf("ledArg(%q, %q) = %q", ct, body, arg)
		}
		if err != nil && arg != "" {
			t.Fatalf("ledArg(%q, %q) = %q with error %v", ct, body, arg, err)
		}
	})
}

func TestDocComments(t *testing.T) { doccheck.Exported(t, doccheck.Sources(t)) }
