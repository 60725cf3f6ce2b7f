package webhook

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/webhook/template"
)

const respDevice = "3f002b000000000000000000"

func respHook(product int64, s store.WebhookSettings) *store.Webhook {
	return &store.Webhook{ID: "h1", UserID: "owner1", ProductID: product, Event: "env", Settings: s}
}

func respEvent(product int64) bus.Event {
	return bus.Event{ID: 5, Name: "env/temp", Data: `{"city":"Paris"}`, DeviceID: respDevice, UserID: "owner1", ProductID: product}
}

// checkBackEvent checks the fields every published-back event shares.
func checkBackEvent(t *testing.T, h *store.Webhook, ev bus.Event) {
	t.Helper()
	if ev.DeviceID != bus.DeviceInternal || ev.TTL != 60 || ev.Public {
		t.Errorf("%s: coreid %q ttl %d public %v; want particle-internal, 60, private", ev.Name, ev.DeviceID, ev.TTL, ev.Public)
	}
	if h.ProductID != 0 {
		if ev.ProductID != h.ProductID || ev.UserID != "" || ev.CustomerID != "" {
			t.Errorf("%s: product hook event owned by user %q customer %q product %d", ev.Name, ev.UserID, ev.CustomerID, ev.ProductID)
		}
	} else if ev.UserID != h.UserID || ev.ProductID != 0 || ev.CustomerID != "" {
		t.Errorf("%s: sandbox hook event owned by user %q customer %q product %d", ev.Name, ev.UserID, ev.CustomerID, ev.ProductID)
	}
}

// joined returns the events' names and their data concatenated.
func joined(evs []bus.Event) (names []string, data string) {
	var b strings.Builder
	for _, e := range evs {
		names = append(names, e.Name)
		b.WriteString(e.Data)
	}
	return names, b.String()
}

func TestResponseChunks(t *testing.T) {
	body := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	tests := []struct {
		size   int
		sizes  []int // chunk sizes
		capped bool
	}{
		{0, nil, false},
		{1, []int{1}, false},
		{511, []int{511}, false},
		{512, []int{512}, false},
		{513, []int{512, 1}, false},
		{1024, []int{512, 512}, false},
		{1025, []int{512, 512, 1}, false},
		{100000, nil, false},
		{100001, nil, true},
		{250000, nil, true},
	}
	for _, tc := range tests {
		h := respHook(0, store.WebhookSettings{})
		evs, err := ResponseEvents(h, respEvent(0), "text/plain", body(tc.size))
		if err != nil {
			t.Fatal(err)
		}
		want := min(tc.size, MaxResponseBytes)
		wantN := (want + ChunkSize - 1) / ChunkSize
		if len(evs) != wantN {
			t.Fatalf("%d bytes: %d events; want %d", tc.size, len(evs), wantN)
		}
		for i, ev := range evs {
			if ev.Name != "hook-response/env/temp/"+strconv.Itoa(i) {
				t.Errorf("%d bytes: event %d named %q", tc.size, i, ev.Name)
			}
			if i < len(evs)-1 && len(ev.Data) != ChunkSize {
				t.Errorf("%d bytes: chunk %d has %d bytes", tc.size, i, len(ev.Data))
			}
			if tc.sizes != nil && len(ev.Data) != tc.sizes[i] {
				t.Errorf("%d bytes: chunk %d has %d bytes; want %d", tc.size, i, len(ev.Data), tc.sizes[i])
			}
			checkBackEvent(t, h, ev)
		}
		if _, data := joined(evs); data != string(body(want)) {
			t.Errorf("%d bytes: chunks do not join to the first %d bytes of the body", tc.size, want)
		}
	}
}

func TestResponseEvents(t *testing.T) {
	const jsonBody = `{"temp":{"now":21.50,"unit":"C"},"list":[1,2],"html":"<b>"}`
	tests := []struct {
		name    string
		product int64
		s       store.WebhookSettings
		ctype   string
		body    string
		names   []string
		data    string
	}{
		{"sandbox default topic", 0, store.WebhookSettings{}, "text/plain", "ok", []string{"hook-response/env/temp/0"}, "ok"},
		{"product default topic", 9, store.WebhookSettings{}, "text/plain", "ok", []string{respDevice + "/hook-response/env/temp/0"}, "ok"},
		{"response topic rendered", 0, store.WebhookSettings{ResponseTopic: "{{PARTICLE_DEVICE_ID}}/weather/{{city}}"}, "", "ok",
			[]string{respDevice + "/weather/Paris/0"}, "ok"},
		{"response topic renders empty", 0, store.WebhookSettings{ResponseTopic: "{{nothing}}"}, "", "ok", []string{"hook-response/env/temp/0"}, "ok"},
		{"response topic too long", 0, store.WebhookSettings{ResponseTopic: strings.Repeat("t", 300)}, "", "ok",
			[]string{strings.Repeat("t", 240) + "/0"}, "ok"},
		{"template", 0, store.WebhookSettings{ResponseTemplate: "{{temp.now}}{{temp.unit}} {{list.1}} {{html}} {{{html}}} {{PARTICLE_EVENT_NAME}}"},
			"application/json", jsonBody, []string{"hook-response/env/temp/0"}, "21.50C 2 &lt;b&gt; <b> env/temp"},
		{"template response wins over variables", 0, store.WebhookSettings{ResponseTemplate: "{{city}}"}, "application/json", `{"city":"Lyon"}`,
			[]string{"hook-response/env/temp/0"}, "Lyon"},
		{"template array response", 0, store.WebhookSettings{ResponseTemplate: "{{#.}}[{{.}}]{{/.}}"}, "application/json", `[1,"a"]`,
			[]string{"hook-response/env/temp/0"}, "[1][a]"},
		{"template non-JSON body published as is", 0, store.WebhookSettings{ResponseTemplate: "{{x}}"}, "text/html", "<html>",
			[]string{"hook-response/env/temp/0"}, "<html>"},
		{"template renders empty", 0, store.WebhookSettings{ResponseTemplate: "{{missing}}"}, "application/json", jsonBody, nil, ""},
		{"data url", 0, store.WebhookSettings{DataURLResponseEvent: true, ResponseTemplate: "ignored"}, "image/png", "\x89PNG",
			[]string{"hook-response/env/temp/0"}, "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("\x89PNG"))},
		{"data url without content type", 0, store.WebhookSettings{DataURLResponseEvent: true}, "", "x",
			[]string{"hook-response/env/temp/0"}, "data:application/octet-stream;base64,eA=="},
		{"unchunked", 0, store.WebhookSettings{Unchunked: true}, "", strings.Repeat("u", 1024),
			[]string{"hook-response/env/temp/0"}, strings.Repeat("u", 1024)},
		{"unchunked too large is dropped", 0, store.WebhookSettings{Unchunked: true}, "", strings.Repeat("u", 1025), nil, ""},
		{"empty body", 0, store.WebhookSettings{ResponseTemplate: "x"}, "application/json", "", nil, ""},
	}
	for _, tc := range tests {
		h := respHook(tc.product, tc.s)
		evs, err := ResponseEvents(h, respEvent(tc.product), tc.ctype, []byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		names, data := joined(evs)
		if strings.Join(names, ",") != strings.Join(tc.names, ",") || data != tc.data {
			t.Errorf("%s: got %q %q; want %q %q", tc.name, names, data, tc.names, tc.data)
		}
		for _, ev := range evs {
			checkBackEvent(t, h, ev)
		}
	}
}

func TestResponseEventsErrors(t *testing.T) {
	for _, s := range []store.WebhookSettings{{ResponseTemplate: "{{#a}}"}, {ResponseTopic: "{{"}} {
		_, err := ResponseEvents(respHook(0, s), respEvent(0), "application/json", []byte(`{"a":1}`))
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%+v: error %v; want a *RequestError", s, err)
		}
	}
	// A template that loops too much fails instead of publishing a
	// partial answer.
	var b strings.Builder
	b.WriteString(`{"a":[`)
	for i := range 2000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("0")
	}
	b.WriteString("]}")
	s := store.WebhookSettings{ResponseTemplate: "{{#a}}{{#a}}{{/a}}{{/a}}"}
	if _, err := ResponseEvents(respHook(0, s), respEvent(0), "application/json", []byte(b.String())); !errors.Is(err, template.ErrWorkLimit) {
		t.Errorf("runaway template: %v", err)
	}
	// A template whose output is too large is cut at MaxResponseBytes.
	s = store.WebhookSettings{ResponseTemplate: "{{#a}}" + strings.Repeat("x", 100) + "{{/a}}"}
	evs, err := ResponseEvents(respHook(0, s), respEvent(0), "application/json", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, data := joined(evs); len(data) != MaxResponseBytes {
		t.Errorf("large template output: %d bytes published", len(data))
	}
}

func TestErrorEvents(t *testing.T) {
	long := strings.Repeat("e", 600)
	tests := []struct {
		name    string
		product int64
		s       store.WebhookSettings
		msg     string
		body    string
		names   []string
		data    string
	}{
		{"message only", 0, store.WebhookSettings{}, "error status 404 from example.com", "",
			[]string{"hook-error/env/temp/0"}, "error status 404 from example.com"},
		{"message and body", 0, store.WebhookSettings{}, "error status 500 from example.com", "oops",
			[]string{"hook-error/env/temp/0"}, "error status 500 from example.com\noops"},
		{"product hook keeps hook-error topic", 9, store.WebhookSettings{}, "m", "",
			[]string{"hook-error/env/temp/0"}, "m"},
		{"chunked", 0, store.WebhookSettings{}, "m", long,
			[]string{"hook-error/env/temp/0", "hook-error/env/temp/1"}, "m\n" + long},
		{"error topic rendered", 0, store.WebhookSettings{ErrorResponseTopic: "err/{{PARTICLE_DEVICE_ID}}/{{city}}"}, "m", "",
			[]string{"err/" + respDevice + "/Paris/0"}, "m"},
		{"malformed error topic falls back", 0, store.WebhookSettings{ErrorResponseTopic: "{{#x}}"}, "m", "",
			[]string{"hook-error/env/temp/0"}, "m"},
		{"empty message still publishes", 0, store.WebhookSettings{}, "", "", []string{"hook-error/env/temp/0"}, ""},
		{"unchunked cut to the device limit", 0, store.WebhookSettings{Unchunked: true}, "m", strings.Repeat("b", 2000),
			[]string{"hook-error/env/temp/0"}, ("m\n" + strings.Repeat("b", 2000))[:1024]},
		{"capped", 0, store.WebhookSettings{}, "m", strings.Repeat("b", 200000), nil, ("m\n" + strings.Repeat("b", 200000))[:MaxResponseBytes]},
	}
	for _, tc := range tests {
		h := respHook(tc.product, tc.s)
		evs := ErrorEvents(h, respEvent(tc.product), tc.msg, []byte(tc.body))
		names, data := joined(evs)
		if (tc.names != nil && strings.Join(names, ",") != strings.Join(tc.names, ",")) || data != tc.data {
			t.Errorf("%s: got %q %q; want %q %q", tc.name, names, data, tc.names, tc.data)
		}
		for _, ev := range evs {
			checkBackEvent(t, h, ev)
		}
	}
}

func TestSentEvent(t *testing.T) {
	for _, product := range []int64{0, 9} {
		h := respHook(product, store.WebhookSettings{ResponseTopic: "custom"})
		ev := SentEvent(h, respEvent(product))
		if ev.Name != "hook-sent/env/temp" || ev.Data != "undefined" {
			t.Errorf("SentEvent = %q %q", ev.Name, ev.Data)
		}
		checkBackEvent(t, h, ev)
	}
}

func BenchmarkResponseEvents(b *testing.B) {
	h := respHook(0, store.WebhookSettings{ResponseTemplate: "{{temp.now}} {{temp.unit}}"})
	e := respEvent(0)
	body := []byte(`{"temp":{"now":21.5,"unit":"C"},"pad":"` + strings.Repeat("p", 2000) + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ResponseEvents(h, e, "application/json", body); err != nil {
			b.Fatal(err)
		}
	}
}
