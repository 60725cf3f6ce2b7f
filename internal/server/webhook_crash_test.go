package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/testproc"
)

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

	var out testproc.Log
	start := func() *testproc.Proc {
		t.Helper()
		p := testproc.Start(t, "wick serve", &out, bin, "serve", "--data", cfg.Data, "--http", addr, "--device-tcp", "",
			"--webhook-allow-private", "--webhook-timeout", "5s", "--webhook-workers", "2", "--log-level", "warn")
		testproc.WaitTCP(t, addr, p)
		return p
	}
	srv := start()

	call := func(method, path, token string, form url.Values, js string) (int, []byte, error) {
		return testproc.Request(context.Background(), http.DefaultClient, method, api, path, token, form, js)
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
	srv.Kill(t)
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
