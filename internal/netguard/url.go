package netguard

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// metadataHosts are host names of cloud instance-metadata services,
// refused whatever the policy. "metadata" and "instance-data" are the
// single-label names that resolve through the cloud's search domain.
var metadataHosts = map[string]bool{
	"metadata":                   true,
	"metadata.google.internal":   true,
	"metadata.goog":              true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
}

// privateSuffixes are special-use domains whose names resolve only on
// local networks: RFC 6761 localhost, RFC 6762 .local (mDNS), RFC 8375
// home.arpa, and .internal (reserved by ICANN for private use).
var privateSuffixes = []struct{ suffix, kind string }{
	{".localhost", kindLoopback},
	{".local", kindPrivate},
	{".home.arpa", kindPrivate},
	{".internal", kindPrivate},
}

// CheckURL statically checks a configured webhook URL, which may hold
// mustache templates. It requires an http or https scheme (in any case,
// never templated), a host, no user info (credentials belong in the
// webhook's auth field, not in a URL that is listed and logged) and a
// port in 1–65535. A literal IP host is checked with CheckAddr; a host
// name is refused if it names a metadata service, is localhost or under
// .localhost (loopback), is under .local, .home.arpa or .internal, or
// has no dot (a search-domain name) — the last three unless
// AllowPrivate; hosts written as numbers in any non-canonical IPv4 form
// (2130706433, 0x7f.1, 0177.0.0.1) are refused always. Where the host or
// port holds a template it cannot be known, and that part is accepted:
// Control enforces the policy at connect time. CheckURL does no DNS.
func (p Policy) CheckURL(raw string) error {
	masked, isTmpl, err := maskTemplates(raw)
	if err != nil {
		return err
	}
	if isTmpl != nil {
		if colon := strings.IndexByte(masked, ':'); colon < 0 || slices.Contains(isTmpl[:colon], true) {
			return invalid("scheme must be written out as http or https, not templated")
		}
	}
	u, err := url.Parse(masked)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return invalid(err.Error())
	}
	hostTmpl, portTmpl := false, false
	if isTmpl != nil {
		hostTmpl, portTmpl = authorityTemplates(masked, isTmpl)
	}
	return p.checkParsed(u, hostTmpl, portTmpl)
}

// checkParsed applies CheckURL's rules to a parsed URL; hostTmpl and
// portTmpl skip the checks of a templated host or port.
func (p Policy) checkParsed(u *url.URL, hostTmpl, portTmpl bool) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("scheme " + strconv.Quote(u.Scheme) + " is not http or https")
	}
	if u.User != nil {
		return invalid("URL has user info; use the webhook's auth field")
	}
	if u.Host == "" || (!hostTmpl && u.Hostname() == "") {
		return invalid("URL has no host")
	}
	if port := u.Port(); port != "" && !portTmpl {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return invalid("port " + port + " is out of range")
		}
	}
	if hostTmpl {
		return nil
	}
	return p.checkHost(u.Hostname())
}

// checkHost checks a host from a parsed URL: an IP literal (zone
// allowed) or a name.
func (p Policy) checkHost(host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(ip)
	}
	name := strings.TrimRight(strings.ToLower(host), ".")
	quoted := strconv.Quote(host)
	if name == "" {
		return invalid("host " + quoted + " is not a name")
	}
	if endsInNumber(name) {
		return forbidden("host " + quoted + " is a non-canonical IPv4 address")
	}
	if metadataHosts[name] {
		return forbidden("host " + quoted + " is " + kindMetadata)
	}
	if p.AllowPrivate {
		return nil
	}
	if name == "localhost" {
		return forbidden("host " + quoted + " is " + kindLoopback)
	}
	for _, s := range privateSuffixes {
		if strings.HasSuffix(name, s.suffix) {
			return forbidden("host " + quoted + " is " + s.kind)
		}
	}
	if !strings.Contains(name, ".") {
		return forbidden("host " + quoted + " is " + kindPrivate + " (a name without a dot)")
	}
	return nil
}

// endsInNumber reports whether a host name's last label is a number in
// decimal, octal or 0x-hex form. The WHATWG URL standard (and so
// browsers and many resolvers, through inet_aton) then reads the whole
// host as an IPv4 address such as 2130706433 or 0x7f.1 = 127.0.0.1;
// Go's parsers do not, so such hosts are refused rather than guessed.
// Canonical dotted-decimal addresses never get here: they parse as IPs.
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// maskTemplates replaces every mustache tag ({{...}} or {{{...}}}) in
// raw with the single byte "1", which is valid in every URL component,
// and reports which bytes of the result were tags. isTmpl is nil when
// raw holds no tag. An unclosed tag is an error.
func maskTemplates(raw string) (masked string, isTmpl []bool, err error) {
	if !strings.Contains(raw, "{{") {
		return raw, nil, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(raw, "{{")
		if i < 0 {
			break
		}
		for _, c := range []byte(raw[:i]) {
			b.WriteByte(c)
			isTmpl = append(isTmpl, false)
		}
		closer := "}}"
		if strings.HasPrefix(raw[i:], "{{{") {
			closer = "}}}"
		}
		j := strings.Index(raw[i+len(closer):], closer)
		if j < 0 {
			return "", nil, invalid("unclosed template tag")
		}
		b.WriteByte('1')
		isTmpl = append(isTmpl, true)
		raw = raw[i+len(closer)+j+len(closer):]
	}
	for _, c := range []byte(raw) {
		b.WriteByte(c)
		isTmpl = append(isTmpl, false)
	}
	return b.String(), isTmpl, nil
}

// authorityTemplates reports whether the host and the port of a masked
// URL came from template tags. It splits the authority the way net/url
// does: it follows "scheme://", ends at the first '/', '?' or '#', user
// info ends at the last '@', and the port follows the last ':' (after
// ']' for a bracketed host). The caller has already parsed masked.
func authorityTemplates(masked string, isTmpl []bool) (host, port bool) {
	start := strings.Index(masked, "://")
	if start < 0 {
		return false, false
	}
	start += len("://")
	end := len(masked)
	if i := strings.IndexAny(masked[start:], "/?#"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(masked[start:end], '@'); at >= 0 {
		start += at + 1
	}
	hostEnd := end
	if i := strings.LastIndexByte(masked[start:end], ':'); i >= 0 {
		if j := strings.LastIndexByte(masked[start:end], ']'); j < i {
			hostEnd = start + i
		}
	}
	tmplIn := func(from, to int) bool {
		for _, t := range isTmpl[from:to] {
			if t {
				return true
			}
		}
		return false
	}
	return tmplIn(start, hostEnd), tmplIn(hostEnd, end)
}
