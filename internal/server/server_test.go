package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
)

func testConfig(t *testing.T) config.Serve {
	t.Helper()
	cfg := config.Default()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	cfg.HTTP = "127.0.0.1:0"
	cfg.DeviceTCP = "127.0.0.1:0"
	return cfg
}

// TestServeLifecycle starts a server with embedded defaults, logs in a user
// created through the admin path, and shuts down cleanly on cancel.
func TestServeLifecycle(t *testing.T) {
	cfg := testConfig(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	if _, err := CreateUser(ctx, cfg, log, "dev@example.com", "correct-horse"); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := CreateUser(ctx, cfg, log, "dev@example.com", "correct-horse"); err != ErrUserExists {
		t.Fatalf("second CreateUser = %v; want ErrUserExists", err)
	}
	for _, bad := range []struct{ email, pw string }{{"not-an-email", "correct-horse"}, {"a@b.c", "short"}} {
		if _, err := CreateUser(ctx, cfg, log, bad.email, bad.pw); err == nil {
			t.Errorf("CreateUser(%q, %q) succeeded", bad.email, bad.pw)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	srv, err := New(runCtx, cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}
	base := "http://" + srv.HTTPAddr().String()

	// The data directory holds the database and a 0600 secret key.
	fi, err := os.Stat(filepath.Join(cfg.Data, "secret.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret.key: %v mode %v", err, fi)
	}

	resp, err := http.PostForm(base+"/oauth/token", url.Values{
		"grant_type": {"password"}, "username": {"dev@example.com"}, "password": {"correct-horse"},
		"client_id": {"particle"}, "client_secret": {"particle"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(tok.AccessToken) != 40 {
		t.Fatalf("login: status %d token %q", resp.StatusCode, tok.AccessToken)
	}
	req, _ := http.NewRequest("GET", base+"/v1/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"username":"dev@example.com"`) {
		t.Fatalf("GET /v1/user: %d %s", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}

	// A restart on the same data keeps the account and the key.
	srv2, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	srv2.close()
}

func TestSecretKeyRejectsGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	os.WriteFile(p, []byte("nothex\n"), 0o600)
	if _, err := loadSecretKey(p); err == nil {
		t.Fatal("garbage key accepted")
	}
	p2 := filepath.Join(t.TempDir(), "k2")
	k1, err := loadSecretKey(p2)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := loadSecretKey(p2)
	if err != nil || fmt.Sprint(k1) != fmt.Sprint(k2) || len(k1) != 32 {
		t.Fatalf("reload: %v %x %x", err, k1, k2)
	}
}

func TestRedactDSN(t *testing.T) {
	if got := redactDSN("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Errorf("redactDSN leaked: %q", got)
	}
	if got := redactDSN("nats://u:pw@h:4222"); strings.Contains(got, "pw") {
		t.Errorf("redactDSN leaked: %q", got)
	}
	if got := redactDSN("sqlite:/x"); got != "sqlite:/x" {
		t.Errorf("redactDSN(sqlite) = %q", got)
	}
}
