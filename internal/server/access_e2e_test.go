package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/mail/mailtest"
)

// accessServer runs a server with default stream checks, sign-up open
// and e-mail to an in-test SMTP relay, logging everything at Debug.
type accessServer struct {
	t     *testing.T
	base  string
	relay *mailtest.Server
	logs  *lockedBuffer
}

func startAccessServer(t *testing.T) *accessServer {
	t.Helper()
	cfg := testConfig(t)
	cfg.Signup = true
	relay := mailtest.New(t, mailtest.Options{})
	cfg.SMTPAddr, cfg.SMTPFrom, cfg.SMTPTLS = relay.Addr(), "wick@example.com", "none"
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}
	return &accessServer{t: t, base: "http://" + srv.HTTPAddr().String(), relay: relay, logs: logs}
}

// call sends a form request and decodes a JSON object answer.
func (a *accessServer) call(method, path, token string, form url.Values) (int, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (a *accessServer) signupLogin(username string, extra url.Values) string {
	a.t.Helper()
	if code, m := a.call("POST", "/v1/users", "", url.Values{"username": {username}, "password": {"a-long-password"}}); code != 200 {
		if code != 400 { // already signed up
			a.t.Fatalf("sign-up %s: %d %v", username, code, m)
		}
	}
	return a.login(username, extra)
}

func (a *accessServer) login(username string, extra url.Values) string {
	a.t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {"a-long-password"},
		"client_id": {"particle"}, "client_secret": {"particle"}}
	for k, v := range extra {
		form[k] = v
	}
	code, m := a.call("POST", "/oauth/token", "", form)
	tok, _ := m["access_token"].(string)
	if code != 200 || tok == "" {
		a.t.Fatalf("login %s: %d %v", username, code, m)
	}
	return tok
}

// openStream opens an event stream and returns a channel closed when the
// server ends it.
func (a *accessServer) openStream(path, token string) <-chan struct{} {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", a.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		a.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	return ended
}

// ends fails the test unless the stream ends within d.
func (a *accessServer) ends(name string, ended <-chan struct{}, d time.Duration) {
	a.t.Helper()
	select {
	case <-ended:
	case <-time.After(d):
		a.t.Errorf("%s: stream still open after %v", name, d)
	}
}

// TestAccessEndToEnd runs issue 10's findings against a real server with
// default settings: streams end within seconds of revocation, expiry
// (expires_in=2) and removal from the team; an invitation grants nothing
// until accepted with the token the invitee got by e-mail; password reset
// tokens are mailed and appear in no log line, even at Debug.
func TestAccessEndToEnd(t *testing.T) {
	a := startAccessServer(t)
	owner := a.signupLogin("owner@example.com", nil)

	// Expiry: a two-second token's stream ends within two more checks.
	short := a.login("owner@example.com", url.Values{"expires_in": {"2"}})
	issued := time.Now()
	expiring := a.openStream("/v1/devices/events", short)
	// Revocation.
	revoked := a.login("owner@example.com", nil)
	revStream := a.openStream("/v1/devices/events", revoked)
	if code, m := a.call("DELETE", "/v1/access_tokens/current", revoked, nil); code != 200 {
		t.Fatalf("logout: %d %v", code, m)
	}
	a.ends("revoked token", revStream, 5*time.Second)
	a.ends("expired token", expiring, time.Until(issued.Add(2*time.Second+5*time.Second)))

	// An invitation to an address someone else signs up with first.
	if code, m := a.call("POST", "/v1/user/products", owner, url.Values{"product[name]": {"Widget"}, "product[platform_id]": {"6"}}); code != 200 {
		t.Fatalf("create product: %d %v", code, m)
	}
	if code, m := a.call("POST", "/v1/products/widget/team", owner, url.Values{"username": {"dev@example.com"}, "role": {"Developer"}}); code != 200 ||
		m["invite_token"] != nil || m["invite_sent"] != true {
		t.Fatalf("invite: %d %v (the token must go by mail only)", code, m)
	}
	dev := a.signupLogin("dev@example.com", nil) // the squatter or the real person: nobody knows yet
	if code, _ := a.call("GET", "/v1/products/widget", dev, nil); code != 403 {
		t.Fatalf("pending invitee reads the product: %d", code)
	}
	msgs := a.relay.Wait(t, 1, 10*time.Second)
	tok := regexp.MustCompile(`token=([0-9a-f]{40})`).FindStringSubmatch(msgs[0].Body)
	if msgs[0].To != "dev@example.com" || tok == nil {
		t.Fatalf("invitation mail to %s:\n%s", msgs[0].To, msgs[0].Body)
	}
	if code, m := a.call("POST", "/v1/user/team-invites/accept", dev, url.Values{"token": {tok[1]}}); code != 200 {
		t.Fatalf("accept: %d %v", code, m)
	}
	// Removal from the team ends the member's product stream.
	teamStream := a.openStream("/v1/products/widget/events", dev)
	if code, m := a.call("DELETE", "/v1/products/widget/team/dev@example.com", owner, nil); code != 200 {
		t.Fatalf("remove: %d %v", code, m)
	}
	a.ends("removed member", teamStream, 5*time.Second)

	// Password reset: mailed, never logged.
	if code, _ := a.call("POST", "/v1/user/password-reset", "", url.Values{"username": {"owner@example.com"}}); code != 200 {
		t.Fatalf("reset: %d", code)
	}
	msgs = a.relay.Wait(t, 2, 10*time.Second)
	reset := regexp.MustCompile(`token=([0-9a-f]{40})`).FindStringSubmatch(msgs[1].Body)
	if msgs[1].To != "owner@example.com" || reset == nil {
		t.Fatalf("reset mail to %s:\n%s", msgs[1].To, msgs[1].Body)
	}
	if code, m := a.call("PUT", "/v1/user/password-reset", "", url.Values{"token": {reset[1]}, "password": {"a-long-password"}}); code != 200 {
		t.Fatalf("reset with the mailed token: %d %v", code, m)
	}
	logs := a.logs.String()
	for _, secret := range []string{reset[1], tok[1], owner, short, revoked, dev} {
		if strings.Contains(logs, secret) {
			t.Errorf("a credential is in the log: %s…", secret[:8])
		}
	}
}
