package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
)

var updateRequests = flag.Bool("update-requests", false, "rewrite testdata/requests/*.golden")

// requestEvent is the event of the request tests: its data is a JSON object.
func requestEvent() bus.Event {
	return bus.Event{
		ID:          77,
		Name:        "env/temp",
		Data:        `{"temp":21.50,"unit":"°C","label":"a&b <c>","list":[{"v":1},{"v":2}]}`,
		TTL:         60,
		PublishedAt: time.Date(2017, 2, 1, 21, 8, 5, 763_000_000, time.UTC),
		DeviceID:    "3f002b000000000000000000",
		UserID:      "owner1",
	}
}

func strPtr(s string) *string { return &s }

// requestCases are the golden requests, shared with the fuzz seeds.
var requestCases = []struct {
	name    string
	product int64
	s       store.WebhookSettings
	data    *string // replaces the event data when set
}{
	{name: "get-defaults-in-query", s: store.WebhookSettings{URL: "https://example.com/hook", RequestType: "GET"}},
	{name: "delete-defaults-in-query", s: store.WebhookSettings{URL: "https://example.com/hook/{{PARTICLE_DEVICE_ID}}", RequestType: "delete"}},
	{name: "post-form-default", s: store.WebhookSettings{URL: "https://example.com/hook"}, data: strPtr("mydata")},
	{name: "post-form-merge", s: store.WebhookSettings{URL: "https://example.com/hook", RequestType: "POST",
		Form: map[string]string{"event": "overridden", "t": "{{temp}}", "{{unit}}": "unit-key", "label": "{{label}}", "raw": "{{{label}}}"}}},
	{name: "post-json-object-merge", s: store.WebhookSettings{URL: "https://example.com/hook", RequestType: "POST",
		JSON: json.RawMessage(`{"zeta":"{{temp}}","alpha":{"dev":"{{PARTICLE_DEVICE_ID}}","vals":["{{list.0.v}}","{{{label}}}",3,true,null]},` +
			`"n":1.50,"data":"mine","{{unit}}":"key rendered"}`)}},
	{name: "post-json-string-unquoted", s: store.WebhookSettings{URL: "https://example.com/hook", RequestType: "POST",
		JSON: json.RawMessage(`"{\"temp\": {{temp}}, \"values\": [{{#list}}{{v}},{{/list}}0], \"whole\": {{{PARTICLE_EVENT_JSON}}}}"`)}},
	{name: "put-json-string-array-no-defaults-merge", s: store.WebhookSettings{URL: "https://example.com/hook", RequestType: "PUT",
		JSON: json.RawMessage(`"[{{temp}}, \"{{{PARTICLE_EVENT_NAME}}}\"]"`)}},
	{name: "post-body", s: store.WebhookSettings{URL: "https://example.com/hook", RequestType: "POST",
		Body: strPtr("<reading temp=\"{{temp}}\" unit=\"{{{unit}}}\"/>"), Headers: map[string]string{"Content-Type": "application/xml"}}},
	{name: "post-no-defaults-empty", s: store.WebhookSettings{URL: "https://example.com/hook", NoDefaults: true}},
	{name: "get-no-defaults", s: store.WebhookSettings{URL: "https://example.com/hook?fixed=1", RequestType: "GET", NoDefaults: true,
		Query: map[string]string{"t": "{{temp}}"}}},
	{name: "post-json-no-defaults", s: store.WebhookSettings{URL: "https://example.com/hook", NoDefaults: true,
		JSON: json.RawMessage(`{"t":"{{temp}}"}`)}},
	{name: "post-form-no-defaults", s: store.WebhookSettings{URL: "https://example.com/hook", NoDefaults: true,
		Form: map[string]string{"t": "{{temp}}"}}},
	{name: "auth-basic", s: store.WebhookSettings{URL: "https://example.com/hook",
		Auth: &store.BasicAuth{Username: "user-{{PARTICLE_DEVICE_ID}}", Password: "p@ss:{{temp}}"}}},
	{name: "headers-override", s: store.WebhookSettings{URL: "https://example.com/hook", JSON: json.RawMessage(`{"a":"b"}`),
		Auth: &store.BasicAuth{Username: "u", Password: "p"},
		Headers: map[string]string{"user-agent": "MyAgent/{{temp}}", "Content-Type": "application/vnd.api+json",
			"Authorization": "Bearer {{{PARTICLE_DEVICE_ID}}}", "X-Device": "{{PARTICLE_DEVICE_ID}}", "X-{{list.0.v}}": "templated key",
			"Host": "virtual.example.com", "Content-Length": "999"}}},
	{name: "query-templates", s: store.WebhookSettings{URL: "https://example.com/api/{{PARTICLE_EVENT_NAME}}?key=abc&x=1",
		RequestType: "PUT", Query: map[string]string{"t": "{{temp}}", "dev": "{{PARTICLE_DEVICE_ID}}", "amp": "{{{label}}}", "{{unit}}": "k"},
		Form: map[string]string{"f": "1"}}},
	{name: "get-query-overrides-defaults", s: store.WebhookSettings{URL: "http://example.com/", RequestType: "GET",
		Query: map[string]string{"data": "{{temp}}", "extra": "1"}}},
	{name: "product-variables", product: 4321, s: store.WebhookSettings{URL: "https://example.com/p/{{PRODUCT_ID}}/d/{{PARTICLE_DEVICE_ID}}",
		JSON: json.RawMessage(`{"product":"{{PRODUCT_ID}}","user":"{{PRODUCT_USER_ID}}","version":"{{PRODUCT_VERSION}}","id":"{{PARTICLE_EVENT_ID}}"}`)}},
	{name: "all-variables-body", s: store.WebhookSettings{URL: "https://example.com/hook", Body: strPtr(
		"{{PARTICLE_DEVICE_ID}}|{{PARTICLE_EVENT_NAME}}|{{{PARTICLE_EVENT_VALUE}}}|{{PARTICLE_PUBLISHED_AT}}|{{PARTICLE_EVENT_ID}}|" +
			"{{PRODUCT_ID}}|{{PRODUCT_USER_ID}}|{{PRODUCT_VERSION}}|{{{PARTICLE_EVENT_JSON}}}|{{PARTICLE_EVENT_BASE64}}|" +
			"{{SPARK_CORE_ID}}|{{SPARK_EVENT_NAME}}|{{{SPARK_EVENT_VALUE}}}|{{SPARK_PUBLISHED_AT}}")}},
}

// dumpRequest renders req as golden text: the request line, the Host
// when set apart, the headers sorted, a blank line and the body.
func dumpRequest(t *testing.T, req *http.Request) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", req.Method, req.URL)
	if req.Host != "" && req.Host != req.URL.Host {
		fmt.Fprintf(&b, "Host: %s\n", req.Host)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range req.Header {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		for _, v := range req.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	body := requestBody(t, req)
	if int64(len(body)) != req.ContentLength {
		t.Errorf("ContentLength %d; body has %d bytes", req.ContentLength, len(body))
	}
	b.Write(body)
	return b.String()
}

// requestBody reads the body through GetBody, leaving req usable.
func requestBody(t testing.TB, req *http.Request) []byte {
	t.Helper()
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	rc, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildRequestGolden(t *testing.T) {
	for _, tc := range requestCases {
		t.Run(tc.name, func(t *testing.T) {
			h := &store.Webhook{ID: "hook1", UserID: "owner1", ProductID: tc.product, Event: "env", Settings: tc.s}
			e := requestEvent()
			if tc.product != 0 {
				e.ProductID, e.ProductVersion = tc.product, 3
			}
			if tc.data != nil {
				e.Data = *tc.data
			}
			req, err := BuildRequest(context.Background(), h, e, nil)
			if err != nil {
				t.Fatalf("BuildRequest: %v", err)
			}
			got := dumpRequest(t, req)
			path := filepath.Join("testdata", "requests", tc.name+".golden")
			if *updateRequests {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-requests to create)", err)
			}
			if got != string(want) {
				t.Errorf("request differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

// TestBuildRequestSpecExample checks the default form body against the
// example of docs/particle-api.md#the-outgoing-request byte for byte.
func TestBuildRequestSpecExample(t *testing.T) {
	h := &store.Webhook{UserID: "u", Event: "demo", Settings: store.WebhookSettings{URL: "https://example.com/"}}
	e := bus.Event{Name: "demo", Data: "mydata", DeviceID: "3f002b000000000000000000", UserID: "u",
		PublishedAt: time.Date(2017, 2, 1, 21, 8, 5, 763_000_000, time.UTC)}
	req, err := BuildRequest(context.Background(), h, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	const want = "event=demo&data=mydata&published_at=2017-02-01T21%3A08%3A05.763Z&coreid=3f002b000000000000000000"
	if got := string(requestBody(t, req)); got != want {
		t.Errorf("body = %q; want %q", got, want)
	}
	if got := req.Header.Get("User-Agent"); got != "ParticleBot/1.1 (https://docs.particle.io/webhooks)" {
		t.Errorf("User-Agent = %q", got)
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("method %s content type %q", req.Method, req.Header.Get("Content-Type"))
	}
}

func TestBuildRequestErrors(t *testing.T) {
	big := make([]string, 400)
	for i := range big {
		big[i] = strings.Repeat("x", 10) + strconv.Itoa(i)
	}
	bigData, _ := json.Marshal(map[string]any{"a": big})
	tests := []struct {
		name  string
		s     store.WebhookSettings
		data  string
		field string
		msg   string
	}{
		{"method", store.WebhookSettings{URL: "https://x.test", RequestType: "PATCH"}, "", "requestType", "unsupported method"},
		{"empty url", store.WebhookSettings{URL: "  "}, "", "url", "renders empty"},
		{"url renders empty", store.WebhookSettings{URL: "{{nothing}}"}, "", "url", "renders empty"},
		{"ftp url", store.WebhookSettings{URL: "ftp://x.test/"}, "", "url", "not http or https"},
		{"relative url", store.WebhookSettings{URL: "/just/a/path"}, "", "url", "not http"},
		{"no host", store.WebhookSettings{URL: "http:///path"}, "", "url", "no host"},
		{"bad url", store.WebhookSettings{URL: "http://x.test/%zz"}, "", "url", "invalid URL"},
		{"url template", store.WebhookSettings{URL: "https://x.test/{{#a}}"}, "", "url", "unclosed section"},
		{"query template", store.WebhookSettings{URL: "https://x.test", Query: map[string]string{"a": "{{"}}, "", "query", "unclosed tag"},
		{"form template", store.WebhookSettings{URL: "https://x.test", Form: map[string]string{"{{/x}}": "1"}}, "", "form", "unopened"},
		{"body template", store.WebhookSettings{URL: "https://x.test", Body: strPtr("{{}}")}, "", "body", "empty tag"},
		{"auth template", store.WebhookSettings{URL: "https://x.test", Auth: &store.BasicAuth{Username: "{{#u}}"}}, "", "auth", "unclosed"},
		{"json renders invalid", store.WebhookSettings{URL: "https://x.test", JSON: json.RawMessage(`"{\"v\": {{{PARTICLE_EVENT_VALUE}}}}"`)},
			"not json", "json", "invalid JSON"},
		{"json trailing data", store.WebhookSettings{URL: "https://x.test", JSON: json.RawMessage(`"{} {}"`)}, "", "json", "trailing data"},
		{"json setting invalid", store.WebhookSettings{URL: "https://x.test", JSON: json.RawMessage(`{"a":`)}, "", "json", "invalid JSON setting"},
		{"json too deep", store.WebhookSettings{URL: "https://x.test", JSON: json.RawMessage(`"{{{PARTICLE_EVENT_VALUE}}}"`)},
			strings.Repeat("[", 2000) + strings.Repeat("]", 2000), "json", "nested too deeply"},
		{"header injection", store.WebhookSettings{URL: "https://x.test", Headers: map[string]string{"X-V": "{{{PARTICLE_EVENT_VALUE}}}"}},
			"a\r\nX-Evil: 1", "headers", "line break"},
		{"header name", store.WebhookSettings{URL: "https://x.test", Headers: map[string]string{"X Bad": "1"}}, "", "headers", "invalid header name"},
		{"body too large", store.WebhookSettings{URL: "https://x.test", Body: strPtr("{{#a}}{{#a}}{{.}}{{/a}}{{/a}}")},
			string(bigData), "body", "more than"},
		{"url too large", store.WebhookSettings{URL: "https://x.test/{{#a}}{{#a}}{{.}}{{/a}}{{/a}}"}, string(bigData), "url", "more than"},
	}
	for _, tc := range tests {
		h := &store.Webhook{UserID: "u", Event: "e", Settings: tc.s}
		e := bus.Event{Name: "e", Data: tc.data, DeviceID: "d", UserID: "u"}
		req, err := BuildRequest(context.Background(), h, e, nil)
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: BuildRequest = %v, %v; want a *RequestError", tc.name, req, err)
			continue
		}
		if re.Field != tc.field || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "webhook: ") {
			t.Errorf("%s: error %q (field %s); want field %s and %q", tc.name, err, re.Field, tc.field, tc.msg)
		}
	}
}

func TestBuildRequestMethods(t *testing.T) {
	for in, want := range map[string]string{"": "POST", "post": "POST", " Put ": "PUT", "get": "GET", "DELETE": "DELETE"} {
		h := &store.Webhook{UserID: "u", Event: "e", Settings: store.WebhookSettings{URL: "https://x.test", RequestType: in}}
		req, err := BuildRequest(context.Background(), h, bus.Event{Name: "e", UserID: "u"}, nil)
		if err != nil || req.Method != want {
			t.Errorf("requestType %q: %v, %v; want %s", in, req, err, want)
		}
	}
}

func TestBuildRequestContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &store.Webhook{UserID: "u", Event: "e", Settings: store.WebhookSettings{URL: "https://x.test"}}
	req, err := BuildRequest(ctx, h, bus.Event{Name: "e"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.Context() != ctx {
		t.Errorf("request does not carry the context")
	}
}

// TestSignedRequest sends signed requests to a real server, which
// verifies them with VerifySignature as a receiver would.
func TestSignedRequest(t *testing.T) {
	key := []byte("the-signing-key")
	type seen struct {
		err  error
		body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := VerifySignature(key, r, body, time.Minute)
		if err == nil && !docVerify(key, r, body) {
			err = errors.New("the receiver code of docs/webhooks.md rejects the request")
		}
		got <- seen{err, string(body)}
	}))
	defer srv.Close()
	for _, tc := range requestCases {
		s := tc.s
		s.URL = strings.Replace(s.URL, "https://example.com", srv.URL, 1)
		s.URL = strings.Replace(s.URL, "http://example.com", srv.URL, 1)
		s.Headers = nil // no Host override: the test server must answer
		h := &store.Webhook{UserID: "owner1", Event: "env", ProductID: tc.product, Settings: s}
		before := time.Now().Unix()
		req, err := BuildRequest(context.Background(), h, requestEvent(), key)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ts, _ := strconv.ParseInt(req.Header.Get(HeaderTimestamp), 10, 64)
		if ts < before || ts > time.Now().Unix() {
			t.Errorf("%s: timestamp %d not now", tc.name, ts)
		}
		if !strings.HasPrefix(req.Header.Get(HeaderSignature), "sha256=") || len(req.Header.Get(HeaderSignature)) != 7+64 {
			t.Errorf("%s: signature header %q", tc.name, req.Header.Get(HeaderSignature))
		}
		want := string(requestBody(t, req))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if r := <-got; r.err != nil || r.body != want {
			t.Errorf("%s: server saw body %q, verify %v", tc.name, r.body, r.err)
		}
	}
}

// docVerify is the Go receiver of docs/webhooks.md, verbatim.
func docVerify(secret []byte, r *http.Request, body []byte) bool {
	ts := r.Header.Get("X-Wick-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || math.Abs(time.Since(time.Unix(sec, 0)).Seconds()) > 300 {
		return false
	}
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s.%s.%s.", ts, r.Method, r.RequestURI)
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(r.Header.Get("X-Wick-Signature")))
}

func TestVerifySignature(t *testing.T) {
	key := []byte("k")
	h := &store.Webhook{UserID: "u", Event: "e", Settings: store.WebhookSettings{URL: "https://x.test/p?q=1 2", Body: strPtr("payload")}}
	sign := func() (*http.Request, []byte) {
		req, err := BuildRequest(context.Background(), h, bus.Event{Name: "e"}, key)
		if err != nil {
			t.Fatal(err)
		}
		return req, requestBody(t, req)
	}
	req, body := sign()
	if err := VerifySignature(key, req, body, time.Minute); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	// The documented construction, spelled out.
	ts, _ := strconv.ParseInt(req.Header.Get(HeaderTimestamp), 10, 64)
	if want := Signature(key, ts, "POST", "/p?q=1%202", []byte("payload")); req.Header.Get(HeaderSignature) != want {
		t.Errorf("signature %s; want %s", req.Header.Get(HeaderSignature), want)
	}
	if err := VerifySignature([]byte("other"), req, body, 0); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong key: %v", err)
	}
	if err := VerifySignature(key, req, []byte("payloaD"), 0); !errors.Is(err, ErrSignature) {
		t.Errorf("changed body: %v", err)
	}
	r2, _ := sign()
	r2.Method = "PUT"
	if err := VerifySignature(key, r2, body, 0); !errors.Is(err, ErrSignature) {
		t.Errorf("changed method: %v", err)
	}
	r3, _ := sign()
	r3.URL.RawQuery = "q=2"
	if err := VerifySignature(key, r3, body, 0); !errors.Is(err, ErrSignature) {
		t.Errorf("changed query: %v", err)
	}
	r4, _ := sign()
	old := time.Now().Add(-time.Hour).Unix()
	r4.Header.Set(HeaderTimestamp, strconv.FormatInt(old, 10))
	r4.Header.Set(HeaderSignature, Signature(key, old, "POST", "/p?q=1%202", body))
	if err := VerifySignature(key, r4, body, 5*time.Minute); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "away from now") {
		t.Errorf("old timestamp: %v", err)
	}
	if err := VerifySignature(key, r4, body, 0); err != nil {
		t.Errorf("old timestamp without a skew limit: %v", err)
	}
	r5, _ := sign()
	r5.Header.Del(HeaderSignature)
	if err := VerifySignature(key, r5, body, 0); !errors.Is(err, ErrSignature) {
		t.Errorf("missing header: %v", err)
	}
	r6, _ := sign()
	r6.Header.Set(HeaderTimestamp, "soon")
	if err := VerifySignature(key, r6, body, 0); !errors.Is(err, ErrSignature) {
		t.Errorf("bad timestamp: %v", err)
	}
	unsigned, err := BuildRequest(context.Background(), h, bus.Event{Name: "e"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if unsigned.Header.Get(HeaderSignature) != "" || unsigned.Header.Get(HeaderTimestamp) != "" {
		t.Errorf("unsigned request has signature headers")
	}
	// A hook's own headers cannot forge the signature headers.
	h.Settings.Headers = map[string]string{HeaderSignature: "sha256=00", HeaderTimestamp: "1"}
	forged, err := BuildRequest(context.Background(), h, bus.Event{Name: "e"}, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(key, forged, requestBody(t, forged), time.Minute); err != nil {
		t.Errorf("hook headers replaced the signature: %v", err)
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := map[string]string{
		"plain":           `"plain"`,
		`q"b\`:            `"q\"b\\"`,
		"<&>":             `"<&>"`,
		"\n\r\t\b\f\x01":  `"\n\r\t\b\f\u0001"`,
		"\x7f é 😀":        "\"\x7f é 😀\"",
		"bad\xffutf8\xc3": `"bad` + "\ufffd" + `utf8` + "\ufffd" + `"`,
		"\u2028":          "\"\u2028\"",
	}
	for in, want := range tests {
		got := string(appendJSONString(nil, in))
		if got != want {
			t.Errorf("appendJSONString(%q) = %s; want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not JSON: %v", in, got, err)
		}
	}
}

// FuzzBuildRequest builds requests from random settings and event data:
// BuildRequest must never panic, fail only with a *RequestError, and
// build requests whose body matches their length, whose headers are
// valid and whose signature verifies.
func FuzzBuildRequest(f *testing.F) {
	for _, tc := range requestCases {
		s := tc.s
		body := ""
		if s.Body != nil {
			body = *s.Body
		}
		var hk, hv string
		for k, v := range s.Headers {
			hk, hv = k, v
		}
		var fk, fv string
		for k, v := range s.Form {
			fk, fv = k, v
		}
		f.Add(s.RequestType, s.URL, string(s.JSON), fk, fv, body, hk, hv, requestEvent().Data, s.NoDefaults, uint8(0))
	}
	f.Add("GET", "http://x.test/{{a}}", `"{{{b}}}"`, "", "", "", "", "", `{"a":"%zz","b":"[1,"}`, false, uint8(1))
	f.Add("PUT", "https://x.test", `{"{{a}}":"{{a}}","b":"{{a}}"}`, "", "", "", "X-A", "{{{a}}}", `{"a":"b"}`, true, uint8(2))
	f.Fuzz(func(t *testing.T, method, rawURL, jsonSetting, formKey, formValue, body, headerKey, headerValue, data string, noDefaults bool, mode uint8) {
		s := store.WebhookSettings{URL: rawURL, RequestType: method, NoDefaults: noDefaults,
			Query:   map[string]string{formValue: formKey},
			Headers: map[string]string{headerKey: headerValue},
			Auth:    &store.BasicAuth{Username: formKey, Password: headerValue}}
		switch mode % 4 {
		case 0:
			s.JSON = json.RawMessage(jsonSetting)
		case 1:
			s.Form = map[string]string{formKey: formValue}
		case 2:
			s.Body = &body
		}
		h := &store.Webhook{UserID: "u", ProductID: int64(mode / 4), Event: "e", Settings: s}
		e := bus.Event{Name: "e", Data: data, DeviceID: "d", UserID: "u", ProductID: int64(mode / 4), PublishedAt: time.Unix(1e9, 0)}
		key := []byte("k")
		req, err := BuildRequest(context.Background(), h, e, key)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v; want *RequestError", err, err)
			}
			return
		}
		b := requestBody(t, req)
		if int64(len(b)) != req.ContentLength || len(b) > MaxBodyBytes {
			t.Fatalf("body of %d bytes, ContentLength %d", len(b), req.ContentLength)
		}
		for k, vs := range req.Header {
			for _, v := range vs {
				if err := checkHeader(k, v); err != nil {
					t.Fatalf("invalid header: %v", err)
				}
			}
		}
		if ct := req.Header.Get("Content-Type"); ct == contentJSON && headerKey == "" {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("JSON body is not JSON: %v: %q", err, b)
			}
		}
		if err := VerifySignature(key, req, b, time.Minute); err != nil {
			t.Fatalf("signature: %v", err)
		}
	})
}

func BenchmarkBuildRequest(b *testing.B) {
	h := &store.Webhook{UserID: "owner1", Event: "env", Settings: store.WebhookSettings{
		URL:     "https://example.com/devices/{{PARTICLE_DEVICE_ID}}",
		JSON:    json.RawMessage(`{"temp":"{{temp}}","unit":"{{unit}}","device":"{{PARTICLE_DEVICE_ID}}","at":"{{PARTICLE_PUBLISHED_AT}}"}`),
		Headers: map[string]string{"X-Api-Key": "secret"},
	}}
	e := requestEvent()
	key := []byte("signing-key")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildRequest(context.Background(), h, e, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventContext measures the per-event variables.
func BenchmarkEventContext(b *testing.B) {
	h := &store.Webhook{UserID: "owner1"}
	e := requestEvent()
	b.ReportAllocs()
	for b.Loop() {
		_ = eventContext(h, &e)
	}
}
