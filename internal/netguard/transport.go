package netguard

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// MaxRedirects is the number of redirects CheckRedirect follows.
const MaxRedirects = 5

// Timeouts and limits of the Transport.
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 20 * time.Second
	idleConnTimeout       = 90 * time.Second
	maxIdleConns          = 100
	maxIdleConnsPerHost   = 4
	maxResponseHeaderSize = 64 << 10
)

// Control is a net.Dialer Control function that refuses the connection
// unless CheckAddr allows the address being dialled. It runs after DNS
// resolution, before each connection attempt, so it sees the address
// actually used (no rebinding window). Only TCP is allowed.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return forbidden("network " + strconv.Quote(network) + " is not allowed")
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return forbidden("dial address " + strconv.Quote(address) + " is not an IP address and port")
	}
	return p.CheckAddr(ap.Addr())
}

// Transport returns an http.Transport whose every connection passes
// Control. It never uses a proxy: a proxy from HTTP_PROXY/HTTPS_PROXY
// would make the dialer check only the proxy's address while the proxy
// connected to the real target, bypassing the policy. It dials within
// 10 s, finishes TLS within 10 s, waits at most 20 s for response
// headers, keeps at most 4 idle connections per host, and negotiates
// HTTP/2 when the server offers it. insecureSkipVerify turns off TLS
// certificate verification (a webhook's rejectUnauthorized: false).
func (p Policy) Transport(insecureSkipVerify bool) *http.Transport {
	d := &net.Dialer{
		Timeout:   dialTimeout,
		KeepAlive: 30 * time.Second,
		Control:   p.Control,
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: insecureSkipVerify},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        idleConnTimeout,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		MaxResponseHeaderBytes: maxResponseHeaderSize,
	}
}

// CheckRedirect is an http.Client CheckRedirect function: it follows at
// most MaxRedirects redirects, and only to http or https URLs that pass
// CheckURL's rules (no template leniency here: a redirect target is a
// plain URL). The dialer's Control applies to the new connection too.
func (p Policy) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return forbidden("stopped after " + strconv.Itoa(MaxRedirects) + " redirects")
	}
	if req.URL == nil {
		return invalid("redirect has no URL")
	}
	err := p.checkParsed(req.URL, false, false)
	if ge, ok := err.(*guardError); ok {
		return &guardError{msg: "redirect to " + strconv.Quote(req.URL.Redacted()) + ": " + ge.msg, kind: ge.kind}
	}
	return err
}
