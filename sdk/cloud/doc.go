// Package cloud is a typed Go client for Wick's REST API, which is the
// Particle Device Cloud API (docs/particle-api.md, docs/api.md).
//
// A Client holds the server's base URL, an *http.Client and the access
// token to send; every method takes a context.Context and returns typed
// answers whose JSON tags match the server's. A failed request returns an
// *Error carrying the HTTP status and Particle's error fields; IsNotFound,
// IsUnauthorized and the other helpers classify it:
//
//	c := cloud.New("http://127.0.0.1:8080", "")
//	tok, err := c.Login(ctx, "me@example.com", "password", nil)
//	if err != nil {
//		return err
//	}
//	c = c.WithToken(tok.AccessToken)
//	devices, err := c.ListDevices(ctx)
//
// Subscribe opens a server-sent event stream that reconnects by itself,
// with backoff, and resumes with Last-Event-ID so that no event is lost
// or repeated across a dropped connection (docs/api.md, Replay).
//
// The package imports only the standard library. docs/sdk-cloud.md lists
// what it covers and what is still missing.
package cloud
