package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/webhook/template"
)

// UserAgent is the User-Agent of every webhook request (Particle's).
const UserAgent = "ParticleBot/1.1 (https://docs.particle.io/webhooks)"

// Request signature headers, a Wick extension (docs/webhooks.md).
const (
	// HeaderTimestamp carries the signing time in Unix seconds.
	HeaderTimestamp = "X-Wick-Timestamp"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of
	// timestamp "." METHOD "." request URI "." body.
	HeaderSignature = "X-Wick-Signature"
)

// Limits of a rendered request.
const (
	// MaxBodyBytes bounds a rendered request body.
	MaxBodyBytes = 1 << 20
	// maxFieldBytes bounds every other rendered field: the URL, a query,
	// form or header key or value, a credential.
	maxFieldBytes = 64 << 10
	// maxJSONDepth bounds the nesting of a JSON body.
	maxJSONDepth = 1000
)

// Content types of webhook requests.
const (
	contentJSON = "application/json"
	contentForm = "application/x-www-form-urlencoded"
)

// A RequestError says why a hook's request could not be built for an
// event: a malformed template, a value that renders too large, a URL that
// is not http(s), a JSON template that renders invalid JSON, a header that
// renders invalid. Building the same request again fails the same way, so
// it is not worth retrying.
type RequestError struct {
	// Field is the setting at fault: "url", "requestType", "query",
	// "headers", "auth", "json", "form" or "body".
	Field string
	Err   error
}

// Error implements error.
func (e *RequestError) Error() string { return "webhook: " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// BuildRequest renders h's request for event e
// (docs/particle-api.md#the-outgoing-request): the method (requestType, default
// POST), the URL with its query, the body (json, form, body, or the default
// form), and the headers (User-Agent, content type, basic auth, the hook's own
// headers last, overriding the others). Unless noDefaults is set, the default
// data — event, data, published_at, coreid — goes into the query of a GET or
// DELETE, is merged under the hook's json object or form of a POST or PUT, or
// is the form body of a POST or PUT that has no body of its own. A non-empty
// signingKey adds the X-Wick-Timestamp and X-Wick-Signature headers
// (docs/webhooks.md), for the current time: build a new request for every
// attempt. The request carries ctx. Errors are *RequestError.
func BuildRequest(ctx context.Context, h *store.Webhook, e bus.Event, signingKey []byte) (*http.Request, error) {
	s := &h.Settings
	method := strings.ToUpper(strings.TrimSpace(s.RequestType))
	switch method {
	case "":
		method = http.MethodPost
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return nil, &RequestError{"requestType", fmt.Errorf("unsupported method %q", s.RequestType)}
	}
	tc := eventContext(h, &e)
	published := e.PublishedAt.UTC().Format(publishedAtLayout)
	var defaults []pair
	if !s.NoDefaults {
		for _, f := range defaultFields(&e, published) {
			defaults = append(defaults, pair{f[0], f[1]})
		}
	}
	inQuery := method == http.MethodGet || method == http.MethodDelete

	// URL and query.
	rawURL, err := render(strings.TrimSpace(s.URL), tc, maxFieldBytes)
	if err != nil {
		return nil, &RequestError{"url", err}
	}
	u, err := parseURL(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, &RequestError{"url", err}
	}
	query, err := renderPairs(s.Query, tc)
	if err != nil {
		return nil, &RequestError{"query", err}
	}
	if inQuery {
		query = merge(defaults, query)
	}
	if len(query) > 0 {
		q := encodeForm(query)
		if u.RawQuery != "" {
			q = u.RawQuery + "&" + q
		}
		u.RawQuery = q
	}

	// Body.
	var body []byte
	var contentType string
	bodyDefaults := defaults
	if inQuery {
		bodyDefaults = nil
	}
	switch {
	case hasJSON(s.JSON):
		if body, err = renderJSON(s.JSON, tc, bodyDefaults); err != nil {
			return nil, &RequestError{"json", err}
		}
		contentType = contentJSON
	case s.Form != nil:
		form, err := renderPairs(s.Form, tc)
		if err != nil {
			return nil, &RequestError{"form", err}
		}
		body = []byte(encodeForm(merge(bodyDefaults, form)))
		contentType = contentForm
	case s.Body != nil:
		b, err := render(*s.Body, tc, MaxBodyBytes)
		if err != nil {
			return nil, &RequestError{"body", err}
		}
		body = []byte(b)
	case len(bodyDefaults) > 0:
		body = []byte(encodeForm(bodyDefaults))
		contentType = contentForm
	}
	if len(body) > MaxBodyBytes {
		return nil, &RequestError{"body", fmt.Errorf("renders %d bytes, more than %d", len(body), MaxBodyBytes)}
	}

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, &RequestError{"url", err}
	}
	req.Header.Set("User-Agent", UserAgent)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentType == contentJSON {
		req.Header.Set("Accept", contentJSON)
	}
	if a := s.Auth; a != nil && (a.Username != "" || a.Password != "") {
		user, err := render(a.Username, tc, maxFieldBytes)
		if err != nil {
			return nil, &RequestError{"auth", err}
		}
		pass, err := render(a.Password, tc, maxFieldBytes)
		if err != nil {
			return nil, &RequestError{"auth", err}
		}
		req.SetBasicAuth(user, pass)
	}
	headers, err := renderPairs(s.Headers, tc)
	if err != nil {
		return nil, &RequestError{"headers", err}
	}
	for _, p := range headers {
		if err := checkHeader(p.k, p.v); err != nil {
			return nil, &RequestError{"headers", err}
		}
		switch http.CanonicalHeaderKey(p.k) {
		case "Host":
			req.Host = p.v
		case "Content-Length", "Transfer-Encoding", HeaderTimestamp, HeaderSignature:
			// Set by the transport, or by the signature below.
		default:
			req.Header.Set(p.k, p.v)
		}
	}
	if len(signingKey) > 0 {
		ts := time.Now().Unix()
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Signature(signingKey, ts, method, u.RequestURI(), body))
	}
	return req, nil
}

// parseURL accepts absolute http and https URLs with a host.
func parseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("renders empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	u.Fragment, u.RawFragment = "", ""
	u.RawQuery = escapeQuery(u.RawQuery)
	return u, nil
}

// escapeQuery percent-encodes the bytes a query may not hold as they are
// (controls, space, non-ASCII, "<>\^`{|}), as browsers and Node.js do,
// leaving existing escapes and delimiters alone.
func escapeQuery(q string) string {
	const hexDigits = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c > ' ' && c < 0x7f && strings.IndexByte("\"<>\\^`{|}", c) < 0 {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(q)+8), q[:i]...)
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xf])
	}
	if b == nil {
		return q
	}
	return string(b)
}

// render renders the template src with tc, at most limit bytes. Text
// without "{{" is returned as is.
func render(src string, tc template.Context, limit int) (string, error) {
	if !strings.Contains(src, "{{") {
		if len(src) > limit {
			return "", fmt.Errorf("%d bytes, more than %d", len(src), limit)
		}
		return src, nil
	}
	t, err := template.Parse(src)
	if err != nil {
		return "", err
	}
	out, err := t.RenderLimit(tc, limit)
	if errors.Is(err, template.ErrOutputLimit) {
		return "", fmt.Errorf("renders more than %d bytes", limit)
	}
	if err != nil {
		return "", err
	}
	return out, nil
}

// pair is one key and value of a query, form or header list.
type pair struct{ k, v string }

// renderPairs renders the keys and values of m, in the order of m's keys.
// Pairs whose key renders empty are dropped.
func renderPairs(m map[string]string, tc template.Context) ([]pair, error) {
	if len(m) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]pair, 0, len(keys))
	for _, k := range keys {
		rk, err := render(k, tc, maxFieldBytes)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		rv, err := render(m[k], tc, maxFieldBytes)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", k, err)
		}
		if rk != "" {
			out = append(out, pair{rk, rv})
		}
	}
	return out, nil
}

// merge returns defaults then own, a key of own replacing the default of
// the same name in place (JavaScript's {...defaults, ...own}).
func merge(defaults, own []pair) []pair {
	if len(defaults) == 0 {
		return own
	}
	out := append([]pair(nil), defaults...)
	for _, p := range own {
		if i := slices.IndexFunc(out, func(q pair) bool { return q.k == p.k }); i >= 0 {
			out[i].v = p.v
		} else {
			out = append(out, p)
		}
	}
	return out
}

// encodeForm encodes pairs as application/x-www-form-urlencoded, in order.
func encodeForm(ps []pair) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.v))
	}
	return b.String()
}

// checkHeader rejects header names that are not HTTP tokens and values
// holding CR, LF or NUL (which a template could otherwise use to inject
// headers).
func checkHeader(k, v string) error {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("invalid header name %q", k)
		}
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("value of %q holds a line break or NUL", k)
	}
	return nil
}

// hasJSON reports whether a json setting is present (not empty or null).
func hasJSON(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// renderJSON renders a json setting: an object (or array) has its keys
// and string leaves rendered, each staying a string; a string is rendered
// as a whole, then parsed as JSON, so a template may write unquoted
// numbers or whole objects. When the result is an object, defaults are
// merged under it. Key order is kept.
func renderJSON(raw json.RawMessage, tc template.Context, defaults []pair) ([]byte, error) {
	tree, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON setting: %w", err)
	}
	var v any
	if src, ok := tree.(string); ok {
		out, err := render(src, tc, MaxBodyBytes)
		if err != nil {
			return nil, err
		}
		if v, err = decodeJSON([]byte(out)); err != nil {
			return nil, fmt.Errorf("template renders invalid JSON: %w", err)
		}
	} else {
		budget := MaxBodyBytes
		if v, err = renderTree(tree, tc, &budget); err != nil {
			return nil, err
		}
	}
	if o, ok := v.(*jsonObject); ok && len(defaults) > 0 {
		m := &jsonObject{}
		for _, d := range defaults {
			m.set(d.k, d.v)
		}
		for i, k := range o.keys {
			m.set(k, o.vals[i])
		}
		v = m
	}
	return appendJSON(nil, v), nil
}

// renderTree renders the keys and string leaves of a JSON tree; budget
// bounds the bytes rendered in all.
func renderTree(v any, tc template.Context, budget *int) (any, error) {
	switch x := v.(type) {
	case string:
		out, err := render(x, tc, *budget)
		if err != nil {
			return nil, err
		}
		*budget -= len(out)
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := renderTree(e, tc, budget)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case *jsonObject:
		out := &jsonObject{}
		for i, k := range x.keys {
			rk, err := render(k, tc, *budget)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			*budget -= len(rk)
			r, err := renderTree(x.vals[i], tc, budget)
			if err != nil {
				return nil, err
			}
			out.set(rk, r)
		}
		return out, nil
	}
	return v, nil
}

// jsonObject is a JSON object that keeps its key order. Setting a key
// again replaces its value in place, as JSON.parse and object spreads do.
type jsonObject struct {
	keys []string
	vals []any
}

func (o *jsonObject) set(k string, v any) {
	if i := slices.Index(o.keys, k); i >= 0 {
		o.vals[i] = v
		return
	}
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

// decodeJSON decodes one JSON value into nil, bool, json.Number, string,
// []any and *jsonObject, rejecting trailing data and nesting deeper than
// maxJSONDepth.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := decodeValue(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(d *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &jsonObject{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			if _, err := d.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			a := []any{}
			for d.More() {
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := d.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

// appendJSON appends v (as decodeJSON returns it) as compact JSON, strings
// escaped as JavaScript's JSON.stringify does (no HTML escaping; invalid
// UTF-8 becomes U+FFFD).
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case json.Number:
		return append(b, x...)
	case float64:
		return template.AppendNumber(b, x)
	case string:
		return appendJSONString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case *jsonObject:
		b = append(b, '{')
		for i, k := range x.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSON(b, x.vals[i])
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20:
				b = append(b, c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Signature returns the X-Wick-Signature value of a request: "sha256="
// and the hex HMAC-SHA256, keyed with key, of the decimal timestamp, the
// method, the request URI (path and query, as sent on the request line)
// and the body, joined by ".".
func Signature(key []byte, timestamp int64, method, requestURI string, body []byte) string {
	m := hmac.New(sha256.New, key)
	var buf [24]byte
	m.Write(strconv.AppendInt(buf[:0], timestamp, 10))
	m.Write([]byte{'.'})
	io.WriteString(m, method)
	m.Write([]byte{'.'})
	io.WriteString(m, requestURI)
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrSignature is the error VerifySignature wraps when a request's
// signature is missing, malformed, wrong or too old.
var ErrSignature = errors.New("webhook: invalid request signature")

// VerifySignature checks the X-Wick-Timestamp and X-Wick-Signature headers
// of r, a webhook request as a receiver got it, whose body is body: the
// signature must be the HMAC-SHA256 under key, and when maxSkew > 0 the
// timestamp within maxSkew of the current time. The request URI is
// r.RequestURI (set by net/http servers), else r.URL.RequestURI(). Errors
// wrap ErrSignature.
func VerifySignature(key []byte, r *http.Request, body []byte, maxSkew time.Duration) error {
	tsText := r.Header.Get(HeaderTimestamp)
	sig := r.Header.Get(HeaderSignature)
	if tsText == "" || sig == "" {
		return fmt.Errorf("%w: missing %s or %s", ErrSignature, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed timestamp", ErrSignature)
	}
	if maxSkew > 0 {
		skew := time.Since(time.Unix(ts, 0))
		if skew > maxSkew || skew < -maxSkew {
			return fmt.Errorf("%w: timestamp %d is %s away from now", ErrSignature, ts, skew.Round(time.Second))
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	want := Signature(key, ts, r.Method, uri, body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return fmt.Errorf("%w: signature mismatch", ErrSignature)
	}
	return nil
}
