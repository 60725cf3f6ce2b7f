package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/config"
)

// startServer runs a server on cfg until the test ends and returns it and
// its log.
func startServer(t *testing.T, cfg config.Serve) (*Server, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return srv, logs
}

// TestStartupLog: the start-up log names the data directory, the database
// and the listeners, says that loopback listeners serve this host only,
// and, while there is no account, how to create one in this data.
func TestStartupLog(t *testing.T) {
	cfg := testConfig(t)
	where, err := Locate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, logs := startServer(t, cfg)
	for _, want := range []string{
		"msg=\"wick listening\"", "data=" + where.Data, "db=sqlite:" + where.Data + "/wick.db", "device_tcp=127.0.0.1:",
		"reachable from this host only (loopback)", "--http :8080 --device-tcp :5683",
		"no account yet; create the first one with: echo 'a-long-password' | wick user create you@example.com --password-stdin --data " + where.Data + "\"",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs.String())
		}
	}

	cfg2 := testConfig(t)
	cfg2.HTTP = "0.0.0.0:0"
	cfg2.DeviceTCP = ""
	if _, err := CreateUser(context.Background(), cfg2, nil, "dev@example.com", "a-long-password"); err != nil {
		t.Fatal(err)
	}
	_, logs2 := startServer(t, cfg2)
	for want, present := range map[string]bool{
		"http=\"all interfaces\"": true, "device_tcp=off": true, "device_tcp=disabled": true,
		"no account yet": false, "loopback": false,
	} {
		if strings.Contains(logs2.String(), want) != present {
			t.Errorf("start-up log with an account, listening on all interfaces: %q present=%v wanted %v:\n%s",
				want, !present, present, logs2.String())
		}
	}
}

// TestCreateUserHint: the hint names --db only when it is not the data
// directory's own SQLite file, and quotes paths for the shell.
func TestCreateUserHint(t *testing.T) {
	cfg := config.Default()
	cfg.Data = "/srv/my wick"
	cfg.DB = "postgres://wick@db/wick"
	w, _ := Locate(cfg)
	got := createUserHint(cfg, w)
	if !strings.HasSuffix(got, "--data '/srv/my wick' --db postgres://wick@db/wick") {
		t.Errorf("hint = %q", got)
	}
	if got := scope(&net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 1}); got != "address 10.0.0.5" {
		t.Errorf("scope = %q", got)
	}
}

// TestPublishLimit: POST /v1/devices/events has no per-token limit by
// default (only --rate, per IP); --publish-burst sets one.
func TestPublishLimit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		burst   int
		publish int
		want429 int // index of the first 429, -1 for none
	}{
		{"default: no per-token limit", 0, 12, -1},
		{"--publish-burst 3", 3, 5, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.DeviceTCP = ""
			cfg.PublishBurst = tt.burst
			if _, err := CreateUser(context.Background(), cfg, nil, "dev@example.com", "a-long-password"); err != nil {
				t.Fatal(err)
			}
			srv, _ := startServer(t, cfg)
			base := "http://" + srv.HTTPAddr().String()
			resp, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"password"}, "username": {"dev@example.com"},
				"password": {"a-long-password"}, "client_id": {"particle"}, "client_secret": {"particle"}})
			if err != nil {
				t.Fatal(err)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			first429 := -1
			for i := range tt.publish {
				req, _ := http.NewRequest("POST", base+"/v1/devices/events", strings.NewReader("name=backend&data=x"))
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests && first429 < 0 {
					first429 = i
				} else if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("publish %d: status %d", i, resp.StatusCode)
				}
			}
			if first429 != tt.want429 {
				t.Errorf("first 429 at publish %d; want %d", first429, tt.want429)
			}
		})
	}
}
