package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultClientID and DefaultClientSecret are the OAuth client that
// particle-cli uses and that Wick knows by default (docs/particle-api.md,
// The token endpoint); Login uses them unless told otherwise.
const (
	DefaultClientID     = "particle"
	DefaultClientSecret = "particle"
)

// maxErrorBody bounds how much of a failed answer is read.
const maxErrorBody = 64 << 10

// Client is a client of one Wick server. Its fields are read by every
// call; set them before use and do not change them while calls run. Use
// WithToken for a copy that acts for another account.
type Client struct {
	// BaseURL is the server's URL without a trailing /v1, e.g.
	// "http://127.0.0.1:8080".
	BaseURL string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	// Event streams need a client without a total Timeout.
	HTTPClient *http.Client
	// Token is the access token sent as a Bearer header, unless
	// TokenSource is set.
	Token string
	// TokenSource, when set, is asked for the token before each request
	// (to refresh it, for instance).
	TokenSource func(ctx context.Context) (string, error)
	// UserAgent is sent as User-Agent when not empty.
	UserAgent string
}

// New returns a client of the server at baseURL acting with token ("" for
// none, as before logging in).
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// WithToken returns a copy of c that sends token instead.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.Token, cp.TokenSource = token, nil
	return &cp
}

// httpClient is c.HTTPClient or the default.
func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// token returns the Bearer token to send, "" for none.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.TokenSource != nil {
		t, err := c.TokenSource(ctx)
		if err != nil {
			return "", fmt.Errorf("cloud: token source: %w", err)
		}
		return t, nil
	}
	return c.Token, nil
}

// call is one API request.
type call struct {
	method string
	path   string     // escaped path, starting with /
	query  url.Values // added to the URL
	form   url.Values // form body
	json   any        // JSON body (instead of form)
	basic  [2]string  // HTTP Basic user and password, when basic[0] != ""
	noAuth bool       // send no Bearer token
}

// newRequest builds the HTTP request of cl.
func (c *Client) newRequest(ctx context.Context, cl call) (*http.Request, error) {
	u := strings.TrimRight(c.BaseURL, "/") + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	ctype := ""
	switch {
	case cl.json != nil:
		b, err := json.Marshal(cl.json)
		if err != nil {
			return nil, fmt.Errorf("cloud: encode request: %w", err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	case cl.form != nil:
		body, ctype = strings.NewReader(cl.form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	switch {
	case cl.basic[0] != "":
		req.SetBasicAuth(cl.basic[0], cl.basic[1])
	case !cl.noAuth:
		tok, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return req, nil
}

// do sends cl and decodes a 2xx answer into out (when not nil); any other
// status becomes an *Error.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	req, err := c.newRequest(ctx, cl)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("cloud: %s %s: %w", cl.method, cl.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cloud: %s %s: decode answer: %w", cl.method, cl.path, err)
	}
	return nil
}

// Error is a failed API call: the HTTP status and the fields of the
// error body in any of Particle's shapes — {"error","error_description"}
// (OAuth and rate limits), {"ok":false,"error","info"} and
// {"ok":false,"errors":[...]}.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the "error" field: an OAuth code such as "invalid_grant",
	// or a message such as "Not Found".
	Code string `json:"error"`
	// Description is the "error_description" field.
	Description string `json:"error_description"`
	// Info is the "info" field, an explanation some errors add.
	Info string `json:"info"`
	// Errors is the "errors" list of the list shape.
	Errors []string `json:"errors"`
	// MFAToken is the "mfa_token" of a login that needs a one-time
	// password (see LoginMFA).
	MFAToken string `json:"mfa_token"`
	// RetryAfter is the Retry-After header of a 429 or 503, zero if none.
	RetryAfter time.Duration `json:"-"`
	// Body is the raw error body (at most 64 KiB).
	Body []byte `json:"-"`
}

// Error describes the failure with the most specific message present.
func (e *Error) Error() string {
	msg := e.Description
	if msg == "" {
		msg = e.Code
	}
	if msg == "" && len(e.Errors) > 0 {
		msg = strings.Join(e.Errors, "; ")
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if e.Code != "" && e.Description != "" {
		msg = e.Code + ": " + e.Description
	}
	if e.Info != "" {
		msg += " (" + e.Info + ")"
	}
	return fmt.Sprintf("cloud: %d %s", e.StatusCode, msg)
}

// readError turns a failed answer into an *Error. A body that is not JSON
// is kept in Body only.
func readError(resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode, Body: b}
	_ = json.Unmarshal(b, e)
	e.StatusCode = resp.StatusCode
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// asError returns the *Error in err's chain, nil if none.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// StatusCode returns the HTTP status of an *Error in err's chain, 0 if
// there is none.
func StatusCode(err error) int {
	if e := asError(err); e != nil {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnauthorized reports whether err is a 401 answer: a missing, expired
// or revoked token, or wrong credentials.
func IsUnauthorized(err error) bool { return StatusCode(err) == http.StatusUnauthorized }

// IsForbidden reports whether err is a 403 answer.
func IsForbidden(err error) bool { return StatusCode(err) == http.StatusForbidden }

// IsBadRequest reports whether err is a 400 answer.
func IsBadRequest(err error) bool { return StatusCode(err) == http.StatusBadRequest }

// IsRateLimited reports whether err is a 429 answer; the *Error's
// RetryAfter says when to try again.
func IsRateLimited(err error) bool { return StatusCode(err) == http.StatusTooManyRequests }

// IsMFARequired reports whether err is a login that needs a one-time
// password, and returns the mfa_token to pass to LoginMFA.
func IsMFARequired(err error) (mfaToken string, ok bool) {
	if e := asError(err); e != nil && e.Code == "mfa_required" && e.MFAToken != "" {
		return e.MFAToken, true
	}
	return "", false
}

// pathEscape escapes one path segment.
func pathEscape(s string) string { return url.PathEscape(s) }

// productPath is /v1/products/{product}.
func productPath(product string) string { return "/v1/products/" + pathEscape(product) }

// Do sends a request to a route this package has no method for: method and
// path (escaped, from "/v1/..."), form as the body (POST, PUT, DELETE) or
// the query (GET), and a 2xx JSON answer decoded into out when out is not
// nil. Failures are *Error values, as for every other call.
func (c *Client) Do(ctx context.Context, method, path string, form url.Values, out any) error {
	cl := call{method: method, path: path}
	if method == http.MethodGet || method == http.MethodHead {
		cl.query = form
	} else if form != nil {
		cl.form = form
	}
	return c.do(ctx, cl, out)
}
