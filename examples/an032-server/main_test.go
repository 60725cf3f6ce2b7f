package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/server/servertest"
	"github.com/wick-cloud/wick/sdk/cloud"
)

// TestLEDAgainstWick drives the handler with a real Wick server and a
// simulated device: the page is served without the token, and POST /led
// reaches the device's "led" function.
func TestLEDAgainstWick(t *testing.T) {
	w := servertest.Start(t)
	owner := w.Login(t)
	id := w.StartDevice(t, servertest.Device{Token: owner.Token})
	servertest.WaitOnline(t, owner, id)

	h := NewHandler(owner, id, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `fetch("/led"`) {
		t.Fatalf("GET / = %d %q", resp.StatusCode, page)
	}
	if strings.Contains(string(page), owner.Token) || strings.Contains(string(page), id) {
		t.Fatal("the page holds the token or the device ID")
	}

	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        ledResult
	}{
		{"json on", "application/json", `{"arg":"on"}`, 200, ledResult{OK: true, ReturnValue: ptr(1)}},
		{"json off", "application/json; charset=utf-8", `{"arg":"off"}`, 200, ledResult{OK: true, ReturnValue: ptr(0)}},
		{"form on", "application/x-www-form-urlencoded", url.Values{"arg": {"on"}}.Encode(), 200, ledResult{OK: true, ReturnValue: ptr(1)}},
		{"other arg", "application/json", `{"arg":"blink"}`, 400, ledResult{Error: `arg must be "on" or "off"`}},
		{"no arg", "application/x-www-form-urlencoded", "", 400, ledResult{Error: `arg must be "on" or "off"`}},
		{"bad json", "application/json", `{"arg":`, 400, ledResult{Error: "body is not a JSON object with arg"}},
		{"too big", "application/json", `{"arg":"` + strings.Repeat("x", 2*maxBody) + `"}`, 400, ledResult{Error: "body is not a JSON object with arg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, status := postLED(t, srv.URL, tt.contentType, tt.body)
			if status != tt.status || got.OK != tt.want.OK || got.Error != tt.want.Error ||
				(got.ReturnValue == nil) != (tt.want.ReturnValue == nil) ||
				(got.ReturnValue != nil && *got.ReturnValue != *tt.want.ReturnValue) {
				t.Errorf("POST /led %s = %d %+v; want %d %+v", tt.body, status, got, tt.status, tt.want)
			}
		})
	}

	// A token the cloud refuses, and a device the token cannot reach, are
	// reported without details of the server's configuration.
	for _, c := range []struct {
		name   string
		client *cloud.Client
		device string
		want   string
	}{
		{"revoked token", cloud.New(w.API, "0123456789abcdef0123456789abcdef01234567"), id, "the server's access token was refused"},
		{"unknown device", owner, "0123456789abcdef01234567", "the device is not reachable with the server's token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := httptest.NewServer(NewHandler(c.client, c.device, slog.New(slog.NewTextHandler(io.Discard, nil))))
			defer s.Close()
			got, status := postLED(t, s.URL, "application/json", `{"arg":"on"}`)
			if status != http.StatusBadGateway || got.OK || got.Error != c.want {
				t.Errorf("POST /led = %d %+v; want 502 %q", status, got, c.want)
			}
		})
	}
}

func postLED(t *testing.T, base, contentType, body string) (ledResult, int) {
	t.Helper()
	resp, err := http.Post(base+"/led", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got ledResult
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got, resp.StatusCode
}

func ptr(v int32) *int32 { return &v }

func TestParseConfig(t *testing.T) {
	env := map[string]string{"WICK_TOKEN": "tok", "WICK_DEVICE_ID": "dev"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"env", nil, env, Config{Listen: "127.0.0.1:3000", URL: "http://127.0.0.1:8080", Token: "tok", DeviceID: "dev"}, ""},
		{"flags win", []string{"--url", "http://h:1", "--device-id", "d2", "--listen", ":9"}, env, Config{Listen: ":9", URL: "http://h:1", Token: "tok", DeviceID: "d2"}, ""},
		{"no token", nil, map[string]string{"WICK_DEVICE_ID": "dev"}, Config{}, "no access token"},
		{"no device", []string{"--token", "t"}, nil, Config{}, "no device ID"},
		{"bad flag", []string{"--nope"}, env, Config{}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
