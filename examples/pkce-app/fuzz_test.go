package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/doccheck"
)

// FuzzParseConfig feeds arbitrary command lines to parseConfig: it must
// not panic, and what it accepts must name a client and an http(s) Wick
// URL without a trailing slash, and a redirect URI.
func FuzzParseConfig(f *testing.F) {
	f.Add("--client-id\x00web-1\x00--wick\x00http://127.0.0.1:8080/")
	f.Add("--client-id=c\x00--redirect-uri=https://a.example/cb\x00--listen=:1")
	f.Add("--wick\x00javascript:alert(1)\x00--client-id\x00x")
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parseConfig(strings.Split(line, "\x00"), func(string) string { return "" })
		if err != nil {
			return
		}
		u, perr := url.Parse(c.Wick)
		if c.ClientID == "" || perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			strings.HasSuffix(c.Wick, "/") || c.RedirectURI == "" {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func TestDocComments(t *testing.T) { doccheck.Exported(t, doccheck.Sources(t)) }
