package cloud_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/wick-cloud/wick/sdk/cloud"
)

// fakeWick answers the few requests of the examples as Wick does, so that
// they run without a server; real code points the client at `wick serve`.
func fakeWick() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"token_type":"bearer","access_token":"0f1e2d","expires_in":7776000,"refresh_token":"3c4b5a"}`)
	})
	mux.HandleFunc("GET /v1/devices", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `[{"id":"1d002a000547343232363230","name":"lamp","online":true,"functions":["led"],"variables":{"temp":"double"}}]`)
	})
	mux.HandleFunc("GET /v1/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"ok":false,"error":"Permission Denied","info":"I didn't recognize that device name or ID"}`)
	})
	mux.HandleFunc("GET /v1/devices/events/{prefix...}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ":ok\n\nid: 12\nevent: temp\ndata: {\"data\":\"21.5\",\"ttl\":60,\"published_at\":\"2026-01-01T00:00:00.000Z\",\"coreid\":\"1d002a000547343232363230\"}\n\n")
	})
	return httptest.NewServer(mux)
}

// Example logs in and lists the account's devices.
func Example() {
	srv := fakeWick()
	defer srv.Close()
	ctx := context.Background()

	c := cloud.New(srv.URL, "") // e.g. "http://127.0.0.1:8080"
	tok, err := c.Login(ctx, "me@example.com", "my-password", nil)
	if err != nil {
		log.Fatal(err)
	}
	c = c.WithToken(tok.AccessToken)
	devices, err := c.ListDevices(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range devices {
		fmt.Println(d.ID, *d.Name, d.Online, d.Functions)
	}
	// Output: 1d002a000547343232363230 lamp true [led]
}

// ExampleClient_Subscribe reads events whose name starts with "temp". The
// stream reconnects by itself after a dropped connection, resuming after
// the last event received.
func ExampleClient_Subscribe() {
	srv := fakeWick()
	defer srv.Close()
	ctx := context.Background()

	s, err := cloud.New(srv.URL, "0f1e2d").Subscribe(ctx, cloud.StreamOptions{Prefix: "temp"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.ID, ev.Name, ev.Data, ev.CoreID)
	// Output: 12 temp 21.5 1d002a000547343232363230
}

// ExampleError shows the error of a failed call: its status and
// Particle's fields.
func ExampleError() {
	srv := fakeWick()
	defer srv.Close()

	_, err := cloud.New(srv.URL, "0f1e2d").GetDevice(context.Background(), "nope")
	var e *cloud.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode, e.Code, cloud.IsForbidden(err))
	}
	fmt.Println(err)
	// Output:
	// 403 Permission Denied true
	// cloud: 403 Permission Denied (I didn't recognize that device name or ID)
}
