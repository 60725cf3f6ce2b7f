package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
)

// crashLog collects a child process's output for the failure message.
type crashLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *crashLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *crashLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWebhookCrash is issue 5's crash proof: `wick serve` in another
// process delivers events published through POST /v1/devices/events to a
// webhook; it is killed with SIGKILL in the middle of the flow and
// restarted on the same data directory; every event the API accepted (2xx)
// reaches the receiver. Duplicates are allowed, losses are not.
func TestWebhookCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wick binary and kills it; skipped with -short")
	}
	const (
		events  = 120
		tokens  = 20                    // the API allows about one publish a second per token
		pace    = 40 * time.Millisecond // one publish every pace, round robin over the tokens
		killAt  = events / 2
		maxWait = 2 * time.Minute // generous for a loaded machine; jobs in flight at the kill are read again at the restart
	)
	dir := t.TempDir()
	bin := buildWick(t, dir)
	cfg := config.Default()
	cfg.Data = filepath.Join(dir, "data")
	ctx := context.Background()
	if _, err := CreateUser(ctx, cfg, slog.New(slog.DiscardHandler), "crash@example.com", "a-long-password"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	api := "http://" + addr

	var mu sync.Mutex
	received := map[string]int{}
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q, _ := url.ParseQuery(string(body))
		mu.Lock()
		received[q.Get("data")]++
		mu.Unlock()
		// A slow receiver: with two requests in flight per hook the queue
		// grows, so the kill finds jobs queued and in flight.
		time.Sleep(150 * time.Millisecond)
	}))
	defer rc.Close()

	var out crashLog
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "serve", "--data", cfg.Data, "--http", addr, "--device-tcp", "",
			"--webhook-allow-private", "--webhook-timeout", "5s", "--webhook-workers", "2", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(api + "/v1/user")
			if err == nil {
				resp.Body.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("server did not come up: %v\n%s", err, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	srv := start()
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			srv.Process.Kill()
			<-done
		}
	}()

	call := func(method, path, token string, form url.Values, js string) (int, []byte, error) {
		var body io.Reader
		ctype := ""
		switch {
		case js != "":
			body, ctype = strings.NewReader(js), "application/json"
		case form != nil:
			body, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
		}
		req, _ := http.NewRequest(method, api+path, body)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}

	toks := make([]string, tokens)
	for i := range toks {
		status, body, err := call("POST", "/oauth/token", "", url.Values{"grant_type": {"password"},
			"username": {"crash@example.com"}, "password": {"a-long-password"},
			"client_id": {"particle"}, "client_secret": {"particle"}}, "")
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(body, &tok)
		if err != nil || status != 200 || tok.AccessToken == "" {
			t.Fatalf("login: %d %s %v", status, body, err)
		}
		toks[i] = tok.AccessToken
	}
	status, body, err := call("POST", "/v1/webhooks", toks[0], nil,
		fmt.Sprintf(`{"event":"crash/","url":%q,"requestType":"POST"}`, rc.URL+"/hook"))
	if err != nil || status != 201 {
		t.Fatalf("create webhook: %d %s %v\n%s", status, body, err, out.String())
	}

	// Publish at a steady pace; the server is killed and restarted
	// half-way. Only 2xx answers count as accepted.
	var accepted []string
	var failed int
	killed := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for i := range events {
			<-tick.C
			if i == killAt {
				close(killed)
			}
			data := strconv.Itoa(i)
			status, _, err := call("POST", "/v1/devices/events", toks[i%tokens], url.Values{"name": {"crash/" + data}, "data": {data}}, "")
			if err == nil && status/100 == 2 {
				accepted = append(accepted, data)
			} else {
				failed++
			}
		}
	}()
	<-killed
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	mu.Lock()
	atKill := len(received)
	mu.Unlock()
	srv = start()
	restarted := time.Now()
	<-pubDone
	if len(accepted) < events/2 {
		t.Fatalf("only %d of %d publishes accepted\n%s", len(accepted), events, out.String())
	}

	deadline := time.Now().Add(maxWait)
	for {
		mu.Lock()
		var missing []string
		for _, d := range accepted {
			if received[d] == 0 {
				missing = append(missing, d)
			}
		}
		dups := 0
		for _, n := range received {
			dups += n - 1
		}
		mu.Unlock()
		if len(missing) == 0 {
			t.Logf("%d events accepted (%d publishes refused or lost while down), all delivered %v after the restart; "+
				"%d received before the kill, %d duplicates", len(accepted), failed, time.Since(restarted).Round(time.Second), atKill, dups)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted events never reached the receiver: %v\nserver output:\n%s",
				len(missing), len(accepted), missing, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
