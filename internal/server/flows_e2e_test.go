package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/sim"
	"github.com/wick-cloud/wick/internal/testproc"
)

// The tests of this file follow Particle's two authentication flows for
// products (docs/particle-api.md#the-token-endpoint,
// docs/particle-api.md#customers, docs/particle-api.md#claiming) from end to
// end: a real server, a real `wick sim` device in another process, and nothing
// but HTTP between the test and Wick.

// flowTimeout bounds each wait of a flow test for the device.
const flowTimeout = 20 * time.Second

// flowEnv is one running server, seen from outside: its API URL, a product
// created by its owner, and what the tests need to start a simulator.
type flowEnv struct {
	t          *testing.T
	api        string // base URL
	deviceAddr string // gateway HOST:PORT
	data       string // data directory (server key)
	bin        string // wick binary
	dir        string // scratch directory
	ownerToken string
	product    string // slug
	productID  int
}

// newFlowEnv builds the wick binary, starts a server with an owner
// account, logs the owner in and creates a Photon product, all through the
// API.
func newFlowEnv(t *testing.T) *flowEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the wick binary and runs a simulator; skipped with -short")
	}
	dir := t.TempDir()
	e := &flowEnv{t: t, dir: dir, bin: buildWick(t, dir)}
	cfg := testConfig(t)
	e.data = cfg.Data
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := CreateUser(ctx, cfg, log, "owner@example.com", "a-long-password"); err != nil {
		t.Fatal(err)
	}
	srv, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	}
	e.api = "http://" + srv.HTTPAddr().String()
	e.deviceAddr = srv.DeviceTCPAddr().String()

	r := e.do(flowReq{method: "POST", path: "/oauth/token", form: url.Values{"grant_type": {"password"},
		"username": {"owner@example.com"}, "password": {"a-long-password"}, "client_id": {"particle"}, "client_secret": {"particle"}}})
	e.ownerToken = r.want(200).str("access_token")
	r = e.do(flowReq{method: "POST", path: "/v1/user/products", token: e.ownerToken,
		json: `{"product":{"name":"Smart Lamp","platform_id":6}}`})
	var prod struct {
		Product struct {
			ID   int    `json:"id"`
			Slug string `json:"slug"`
		} `json:"product"`
	}
	r.want(200).decode(&prod)
	e.product, e.productID = prod.Product.Slug, prod.Product.ID
	return e
}

// flowReq is one API request. Credentials: a Bearer token, or HTTP Basic.
type flowReq struct {
	method, path     string
	token            string
	basicID, basicPW string
	form             url.Values // form body (POST, PUT, DELETE) or query (GET)
	json             string     // JSON body
}

// flowResp is an API answer.
type flowResp struct {
	t      *testing.T
	req    flowReq
	status int
	body   []byte
}

// do sends rq and reads the whole answer.
func (e *flowEnv) do(rq flowReq) *flowResp {
	e.t.Helper()
	u := e.api + rq.path
	var body io.Reader
	ctype := ""
	switch {
	case rq.json != "":
		body, ctype = strings.NewReader(rq.json), "application/json"
	case rq.form != nil && rq.method == "GET":
		u += "?" + rq.form.Encode()
	case rq.form != nil:
		body, ctype = strings.NewReader(rq.form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequest(rq.method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	if rq.basicID != "" {
		req.SetBasicAuth(rq.basicID, rq.basicPW)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	return &flowResp{t: e.t, req: rq, status: resp.StatusCode, body: bytes.TrimSpace(b)}
}

// want fails the test unless the answer has the status.
func (r *flowResp) want(status int) *flowResp {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("%s %s = %d %s; want %d", r.req.method, r.req.path, r.status, r.body, status)
	}
	return r
}

// decode unmarshals the body into v.
func (r *flowResp) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("%s %s: body %s: %v", r.req.method, r.req.path, r.body, err)
	}
}

// str returns a string field of a JSON object body.
func (r *flowResp) str(field string) string {
	r.t.Helper()
	var m map[string]any
	r.decode(&m)
	s, _ := m[field].(string)
	if s == "" {
		r.t.Fatalf("%s %s: no %q in %s", r.req.method, r.req.path, field, r.body)
	}
	return s
}

// createClient creates an OAuth client of the product as its owner and
// returns its ID and secret. scope "" is a full client.
func (e *flowEnv) createClient(name, scope string) (id, secret string) {
	e.t.Helper()
	f := url.Values{"name": {name}, "type": {"installed"}}
	if scope != "" {
		f.Set("scope", scope)
	}
	var out struct {
		OK     bool `json:"ok"`
		Client struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
			Scope  string `json:"scope"`
		} `json:"client"`
	}
	e.do(flowReq{method: "POST", path: "/v1/products/" + e.product + "/clients", token: e.ownerToken, form: f}).want(200).decode(&out)
	if !out.OK || out.Client.ID == "" || len(out.Client.Secret) != 40 || out.Client.Scope != scope {
		e.t.Fatalf("client %q: %+v", name, out)
	}
	return out.Client.ID, out.Client.Secret
}

// productToken mints a product bearer token with a full product client.
func (e *flowEnv) productToken(id, secret string) string {
	e.t.Helper()
	return e.do(flowReq{method: "POST", path: "/oauth/token", basicID: id, basicPW: secret,
		form: url.Values{"grant_type": {"client_credentials"}}}).want(200).str("access_token")
}

// startSim runs `wick sim` with count devices whose keys token provisions
// (a product token puts them in its product), each reporting claimCode
// and publishing event every second, with any extra flags. The process is
// killed at cleanup. It returns the device IDs.
func (e *flowEnv) startSim(prefix string, count int, token, claimCode, event string, extra ...string) []string {
	e.t.Helper()
	args := []string{"sim", "--server", e.deviceAddr, "--data", e.data,
		"--api", e.api, "--token", token, "--claim-code", claimCode,
		"--count", strconv.Itoa(count), "--id-prefix", prefix,
		"--publish", event, "--every", "1s",
		"--keys-dir", filepath.Join(e.dir, "keys"), "--log-level", "warn", "--progress", "0"}
	cmd := exec.Command(e.bin, append(args, extra...)...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if e.t.Failed() {
			e.t.Logf("wick sim output:\n%s", out.String())
		}
	})
	ids := make([]string, count)
	for i := range ids {
		// The simulator numbers its devices from 1.
		id, err := sim.DeviceID(prefix, i+1)
		if err != nil {
			e.t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// lockedBuffer is a buffer safe for concurrent writes.
type lockedBuffer = testproc.Log

// flowDevice is the part of a device object the flows look at.
type flowDevice struct {
	ID        string            `json:"id"`
	Online    bool              `json:"online"`
	Connected bool              `json:"connected"`
	ProductID int               `json:"product_id"`
	Functions []string          `json:"functions"`
	Variables map[string]string `json:"variables"`
}

// waitDevices polls GET /v1/devices with token until it lists exactly
// ids, online, with the simulator's function and variables described.
func (e *flowEnv) waitDevices(token string, ids ...string) []flowDevice {
	e.t.Helper()
	deadline := time.Now().Add(flowTimeout)
	for {
		r := e.do(flowReq{method: "GET", path: "/v1/devices", token: token}).want(200)
		var devs []flowDevice
		r.decode(&devs)
		got := make([]string, 0, len(devs))
		ready := true
		for _, d := range devs {
			got = append(got, d.ID)
			ready = ready && d.Online && d.Connected && slices.Contains(d.Functions, "led") && d.Variables["on"] == "bool"
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(ids))
		if ready && slices.Equal(got, want) {
			return devs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("GET /v1/devices = %s; want %v online and described", r.body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// control calls led(on) and reads on through the customer's device routes
// and checks the simulated answers: 1, then true; then led(off) and
// false.
func (e *flowEnv) control(token, id string) {
	e.t.Helper()
	for _, c := range []struct {
		arg    string
		ret    int
		result bool
	}{{"on", 1, true}, {"off", 0, false}, {"on", 1, true}} {
		var call struct {
			ID          string `json:"id"`
			Connected   bool   `json:"connected"`
			ReturnValue *int   `json:"return_value"`
		}
		e.do(flowReq{method: "POST", path: "/v1/devices/" + id + "/led", token: token,
			form: url.Values{"arg": {c.arg}}}).want(200).decode(&call)
		if call.ID != id || !call.Connected || call.ReturnValue == nil || *call.ReturnValue != c.ret {
			e.t.Errorf("led(%s) on %s = %+v; want return_value %d", c.arg, id, call, c.ret)
		}
		var v struct {
			Name     string `json:"name"`
			Result   any    `json:"result"`
			CoreInfo struct {
				DeviceID  string `json:"deviceID"`
				Connected bool   `json:"connected"`
			} `json:"coreInfo"`
		}
		e.do(flowReq{method: "GET", path: "/v1/devices/" + id + "/on", token: token}).want(200).decode(&v)
		if v.Name != "on" || v.Result != c.result || v.CoreInfo.DeviceID != id || !v.CoreInfo.Connected {
			e.t.Errorf("on of %s after led(%s) = %+v; want result %v", id, c.arg, v, c.result)
		}
	}
}

// sseEvent is one event of a stream.
type sseEvent struct {
	Name        string
	Data        string `json:"data"`
	TTL         int    `json:"ttl"`
	PublishedAt string `json:"published_at"`
	CoreID      string `json:"coreid"`
	ProductID   int    `json:"productID"` // product streams only
}

// openStream opens an event stream with token and returns its events;
// the channel closes when the stream ends. It fails the test unless the
// server answers 200 with the ":ok" comment. The stream is closed at
// cleanup.
func (e *flowEnv) openStream(path, token string) <-chan sseEvent {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.api+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		e.t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != ":ok\n" {
		resp.Body.Close()
		cancel()
		e.t.Fatalf("GET %s: first line %q, %v; want :ok", path, line, err)
	}
	events := make(chan sseEvent, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		var name string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && name != "":
				ev := sseEvent{Name: name}
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					ev.Data = "undecodable: " + line
				}
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
				name = ""
			}
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return events
}

// TestFlowTwoLegged is the two-legged authentication of Particle's guide
// with a device: the product's server-side client makes a shadow customer
// and a customer token; the customer's claim code claims a simulated
// device when it connects; the customer lists, controls and streams it;
// its token refreshes and is revoked. Other customers of the product see
// nothing of the device; the product token sees it in the product.
func TestFlowTwoLegged(t *testing.T) {
	e := newFlowEnv(t)
	clientID, secret := e.createClient("Lamp Server", "")
	const email, other = "abu@agrabahmonkeys.com", "jafar@agrabahmonkeys.com"

	// The shadow customers, created with the client's credentials.
	for _, c := range []string{email, other} {
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			TokenType    string `json:"token_type"`
		}
		e.do(flowReq{method: "POST", path: "/v1/products/" + e.product + "/customers", basicID: clientID, basicPW: secret,
			form: url.Values{"email": {c}, "no_password": {"true"}}}).want(201).decode(&tok)
		if len(tok.AccessToken) != 40 || tok.TokenType != "bearer" {
			t.Fatalf("create customer %s: %+v", c, tok)
		}
	}
	// A shadow customer has no password to log in with.
	if r := e.do(flowReq{method: "POST", path: "/oauth/token", basicID: clientID, basicPW: secret,
		form: url.Values{"grant_type": {"password"}, "username": {email}, "password": {"guess-a-password"}}}); r.status != 400 ||
		string(r.body) != `{"error":"invalid_grant","error_description":"User credentials are invalid"}` {
		t.Errorf("password login of a shadow customer = %d %s; want 400 invalid_grant", r.status, r.body)
	}

	// Customer tokens, minted by the server for each login.
	customerToken := func(c string) (access, refresh string) {
		r := e.do(flowReq{method: "POST", path: "/oauth/token", basicID: clientID, basicPW: secret,
			form: url.Values{"grant_type": {"client_credentials"}, "scope": {"customer=" + c}}}).want(200)
		if s := r.str("scope"); s != "customer="+c {
			t.Errorf("token scope %q; want customer=%s", s, c)
		}
		return r.str("access_token"), r.str("refresh_token")
	}
	token, refresh := customerToken(email)
	otherToken, _ := customerToken(other)

	// The customer asks for a claim code; the device reports it on
	// connect. The factory keys the device into the product with a
	// product token.
	var claim struct {
		ClaimCode string   `json:"claim_code"`
		DeviceIDs []string `json:"device_ids"`
	}
	e.do(flowReq{method: "POST", path: "/v1/device_claims", token: token}).want(200).decode(&claim)
	if len(claim.ClaimCode) != 63 || claim.DeviceIDs == nil || len(claim.DeviceIDs) != 0 {
		t.Fatalf("claim code: %+v", claim)
	}
	prodToken := e.productToken(clientID, secret)
	id := e.startSim("f1", 1, prodToken, claim.ClaimCode, "sensorValueEvent")[0]

	devs := e.waitDevices(token, id)
	if devs[0].ProductID != e.productID {
		t.Errorf("device product_id %d; want %d", devs[0].ProductID, e.productID)
	}
	// The claim code is spent: the next one lists the claimed device.
	e.do(flowReq{method: "POST", path: "/v1/device_claims", token: token}).want(200).decode(&claim)
	if !slices.Equal(claim.DeviceIDs, []string{id}) {
		t.Errorf("device_ids after the claim = %v; want [%s]", claim.DeviceIDs, id)
	}

	// The customer's event stream, opened before control so that it sees
	// the next publications.
	events := e.openStream("/v1/devices/events/sensorValueEvent", token)
	otherEvents := e.openStream("/v1/devices/events", otherToken)
	otherPublic := e.openStream("/v1/events/sensorValueEvent", otherToken)
	productEvents := e.openStream("/v1/products/"+e.product+"/events/sensorValueEvent", prodToken)
	e.control(token, id)

	deadline := time.After(flowTimeout)
	for got := false; !got; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("customer's event stream ended")
			}
			if ev.Name != "sensorValueEvent" || ev.CoreID != id || ev.TTL != 60 || ev.PublishedAt == "" {
				t.Fatalf("event %+v; want sensorValueEvent from %s", ev, id)
			}
			if v, err := strconv.Atoi(ev.Data); err != nil || v < 0 || v > 4095 {
				t.Errorf("sensorValueEvent data %q; want a reading 0-4095", ev.Data)
			}
			got = true
		case <-deadline:
			t.Fatal("no sensorValueEvent on the customer's stream")
		}
	}

	// The customer names the device and reaches it by that name.
	var renamed struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	e.do(flowReq{method: "PUT", path: "/v1/devices/" + id, token: token, json: `{"name":"porch-lamp"}`}).want(200).decode(&renamed)
	if renamed.ID != id || renamed.Name != "porch-lamp" {
		t.Errorf("rename: %+v", renamed)
	}
	var byName struct {
		Result   any `json:"result"`
		CoreInfo struct {
			DeviceID string `json:"deviceID"`
			Name     string `json:"name"`
		} `json:"coreInfo"`
	}
	e.do(flowReq{method: "GET", path: "/v1/devices/porch-lamp/on", token: token}).want(200).decode(&byName)
	if byName.Result != true || byName.CoreInfo.DeviceID != id || byName.CoreInfo.Name != "porch-lamp" {
		t.Errorf("on by name: %+v", byName)
	}

	// Isolation: the other customer of the product sees and reaches
	// nothing of the device.
	if r := e.do(flowReq{method: "GET", path: "/v1/devices", token: otherToken}).want(200); string(r.body) != "[]" {
		t.Errorf("other customer's devices: %s; want []", r.body)
	}
	// A foreign device is answered like an unknown one
	// (docs/particle-api.md#device-id-or-name), the hint pointing at this
	// server's device list.
	unknown := `{"ok":false,"error":"Permission Denied","info":"I didn't recognize that device name or ID, try opening ` +
		e.api + `/v1/devices"}`
	const (
		denied   = `{"ok":false,"error":"Permission Denied"}`
		someones = `{"ok":false,"errors":["That belongs to someone else. To request a transfer add ?request_transfer=true to the URL."]}`
	)
	for _, c := range []struct {
		req  flowReq
		want string // the body of the 403
	}{
		{flowReq{method: "GET", path: "/v1/devices/" + id}, unknown},
		{flowReq{method: "GET", path: "/v1/devices/porch-lamp/on"}, unknown},
		{flowReq{method: "POST", path: "/v1/devices/" + id + "/led", form: url.Values{"arg": {"off"}}}, unknown},
		{flowReq{method: "GET", path: "/v1/devices/" + id + "/on"}, unknown},
		{flowReq{method: "PUT", path: "/v1/devices/" + id, form: url.Values{"name": {"stolen"}}}, unknown},
		{flowReq{method: "PUT", path: "/v1/devices/" + id + "/ping"}, unknown},
		{flowReq{method: "GET", path: "/v1/devices/" + id + "/events"}, unknown},
		{flowReq{method: "DELETE", path: "/v1/devices/" + id}, unknown},
		{flowReq{method: "POST", path: "/v1/devices", form: url.Values{"id": {id}}}, someones},
		{flowReq{method: "GET", path: "/v1/products/" + e.product + "/devices"}, denied},
		{flowReq{method: "GET", path: "/v1/products/" + e.product + "/devices/" + id}, denied},
		{flowReq{method: "POST", path: "/v1/products/" + e.product + "/devices/" + id + "/led", form: url.Values{"arg": {"off"}}}, denied},
	} {
		rq := c.req
		rq.token = otherToken
		if r := e.do(rq); r.status != http.StatusForbidden || string(r.body) != c.want {
			t.Errorf("other customer: %s %s = %d %s; want 403 %s", rq.method, rq.path, r.status, r.body, c.want)
		}
	}
	// ...not even its events, on its own stream or the public one, while
	// the first customer's stream carries them.
	quiet, seen := time.After(2500*time.Millisecond), 0
	for waiting := true; waiting; {
		select {
		case ev := <-otherEvents:
			t.Errorf("other customer's stream got %+v", ev)
		case ev := <-otherPublic:
			t.Errorf("other customer's public stream got %+v", ev)
		case ev := <-events:
			if ev.CoreID == id {
				seen++
			}
		case <-quiet:
			waiting = false
		}
	}
	if seen == 0 {
		t.Error("the device published nothing while the other customer's streams were watched")
	}
	// The product's stream carries the device's events, with the product.
	select {
	case ev := <-productEvents:
		if ev.Name != "sensorValueEvent" || ev.CoreID != id || ev.ProductID != e.productID {
			t.Errorf("product stream event %+v; want sensorValueEvent of %s in product %d", ev, id, e.productID)
		}
	case <-time.After(flowTimeout):
		t.Error("no sensorValueEvent on the product's stream")
	}
	// The device still belongs to the customer, LED on.
	var v struct {
		Result any `json:"result"`
	}
	e.do(flowReq{method: "GET", path: "/v1/devices/" + id + "/on", token: token}).want(200).decode(&v)
	if v.Result != true {
		t.Errorf("on = %v after the other customer's attempts; want true", v.Result)
	}

	// The product token sees the device in the product, owned by the
	// customer.
	var list struct {
		Devices []struct {
			ID     string `json:"id"`
			Online bool   `json:"online"`
			Owner  string `json:"owner"`
		} `json:"devices"`
		Customers []struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"customers"`
	}
	e.do(flowReq{method: "GET", path: "/v1/products/" + e.product + "/devices", token: prodToken}).want(200).decode(&list)
	if len(list.Devices) != 1 || list.Devices[0].ID != id || !list.Devices[0].Online || list.Devices[0].Owner != email {
		t.Errorf("product devices %+v; want %s online, owned by %s", list.Devices, id, email)
	}
	if len(list.Customers) != 1 || list.Customers[0].Username != email {
		t.Errorf("product device customers %+v; want %s", list.Customers, email)
	}
	// The product token also reaches the device through the product.
	e.do(flowReq{method: "GET", path: "/v1/products/" + e.product + "/devices/" + id + "/on", token: prodToken}).want(200).decode(&v)
	if v.Result != true {
		t.Errorf("product route: on = %v; want true", v.Result)
	}

	// Refresh: a new working pair; the spent refresh token is refused.
	refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	r := e.do(flowReq{method: "POST", path: "/oauth/token", basicID: clientID, basicPW: secret, form: refreshForm}).want(200)
	fresh, freshRefresh := r.str("access_token"), r.str("refresh_token")
	if fresh == token || freshRefresh == refresh {
		t.Error("refresh returned the same tokens")
	}
	r = e.do(flowReq{method: "POST", path: "/oauth/token", basicID: clientID, basicPW: secret, form: refreshForm}).want(400)
	if s := r.str("error"); s != "invalid_grant" {
		t.Errorf("reused refresh token: error %q; want invalid_grant", s)
	}
	e.waitDevices(fresh, id)
	e.control(fresh, id)

	// Logout: the token is revoked and refused everywhere.
	e.do(flowReq{method: "DELETE", path: "/v1/access_tokens/current", token: fresh}).want(200)
	for _, rq := range []flowReq{
		{method: "GET", path: "/v1/devices"},
		{method: "POST", path: "/v1/devices/" + id + "/led", form: url.Values{"arg": {"off"}}},
		{method: "GET", path: "/v1/devices/" + id + "/on"},
		{method: "GET", path: "/v1/devices/events/sensorValueEvent"},
		{method: "GET", path: "/v1/access_tokens/current"},
	} {
		rq.token = fresh
		r := e.do(rq)
		if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "invalid_token") {
			t.Errorf("revoked token: %s %s = %d %s; want 401 invalid_token", rq.method, rq.path, r.status, r.body)
		}
	}
	// Logout ends the session: the refresh token of the revoked token is
	// refused too (Wick's choice; Particle does not say).
	r = e.do(flowReq{method: "POST", path: "/oauth/token", basicID: clientID, basicPW: secret,
		form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {freshRefresh}}})
	if r.status != 400 || string(r.body) != `{"error":"invalid_grant","error_description":"Invalid refresh token"}` {
		t.Errorf("refresh after logout = %d %s; want 400 invalid_grant", r.status, r.body)
	}

	// The other revocation routes (docs/particle-api.md#managing-access-tokens)
	// revoke exactly what they name: all of one customer's tokens, or one token
	// by value (no credentials, as particle-cli sends it).
	t1, _ := customerToken(email)
	t2, _ := customerToken(email)
	e.do(flowReq{method: "DELETE", path: "/v1/access_tokens", token: t1}).want(200)
	e.do(flowReq{method: "DELETE", path: "/v1/access_tokens/" + otherToken}).want(200)
	if r := e.do(flowReq{method: "DELETE", path: "/v1/access_tokens/" + otherToken}); r.status != 404 ||
		string(r.body) != `{"ok":false,"error":"Token not found"}` {
		t.Errorf("revoking a revoked token = %d %s; want 404", r.status, r.body)
	}
	t3, _ := customerToken(other)
	for _, c := range []struct {
		name, token string
		status      int
	}{
		{"customer's token that revoked all", t1, 401},
		{"customer's other token", t2, 401},
		{"other customer's token revoked by value", otherToken, 401},
		{"other customer's new token", t3, 200},
		{"product token", prodToken, 200},
		{"owner's token", e.ownerToken, 200},
	} {
		if r := e.do(flowReq{method: "GET", path: "/v1/access_tokens/current", token: c.token}); r.status != c.status {
			t.Errorf("%s after the revocations: %d %s; want %d", c.name, r.status, r.body, c.status)
		}
	}
	// The device stays the customer's through all of it.
	t4, _ := customerToken(email)
	e.waitDevices(t4, id)
}

// TestFlowSimpleAuth is simple authentication: an app holding only a
// customers:create client signs a customer up with a password and logs it
// in; the customer claims one device with a product claim code and one by
// ID, and controls both. The client itself can do nothing else.
func TestFlowSimpleAuth(t *testing.T) {
	e := newFlowEnv(t)
	appID, appSecret := e.createClient("Lamp App", "customers:create")
	const email, password = "lightbulb-fan@example.com", "glow-in-the-dark"
	base := "/v1/products/" + e.product

	// Sign-up, as particle-api-js createCustomer sends it; the answer
	// carries a customer token.
	signup := e.do(flowReq{method: "POST", path: base + "/customers", form: url.Values{"email": {email}, "password": {password},
		"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {appSecret}}}).want(201).str("access_token")
	var user struct {
		Username string `json:"username"`
	}
	e.do(flowReq{method: "GET", path: "/v1/user", token: signup}).want(200).decode(&user)
	if user.Username != email {
		t.Fatalf("GET /v1/user with the sign-up token = %+v; want %s", user, email)
	}
	// Login through the same client.
	r := e.do(flowReq{method: "POST", path: "/oauth/token", form: url.Values{"grant_type": {"password"},
		"username": {email}, "password": {password}, "client_id": {appID}, "client_secret": {appSecret}}}).want(200)
	token := r.str("access_token")
	user.Username = ""
	e.do(flowReq{method: "GET", path: "/v1/user", token: token}).want(200).decode(&user)
	if user.Username != email {
		t.Fatalf("GET /v1/user = %+v; want %s", user, email)
	}

	// The factory keys two devices into the product (a full client of the
	// owner's); both report the customer's product claim code, which only
	// one of them can take.
	var claim struct {
		ClaimCode string `json:"claim_code"`
	}
	e.do(flowReq{method: "POST", path: base + "/device_claims", token: token}).want(200).decode(&claim)
	factoryID, factorySecret := e.createClient("Factory", "")
	factoryToken := e.productToken(factoryID, factorySecret)
	ids := e.startSim("f2", 2, factoryToken, claim.ClaimCode, "sensorValueEvent")

	var claimed []flowDevice
	deadline := time.Now().Add(flowTimeout)
	for len(claimed) == 0 {
		e.do(flowReq{method: "GET", path: "/v1/devices", token: token}).want(200).decode(&claimed)
		if time.Now().After(deadline) {
			t.Fatal("no device claimed with the claim code")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(claimed) != 1 || !slices.Contains(ids, claimed[0].ID) {
		t.Fatalf("devices after the claim code: %+v; want one of %v", claimed, ids)
	}
	byCode := claimed[0].ID
	byID := ids[0]
	if byID == byCode {
		byID = ids[1]
	}
	// The other one, once online in the product, unowned: claimed by ID
	// (docs/particle-api.md#claiming-a-device-by-id), JSON as particle-api-js
	// sends it.
	for deadline := time.Now().Add(flowTimeout); ; {
		var d struct {
			Online bool    `json:"online"`
			Owner  *string `json:"owner"`
		}
		e.do(flowReq{method: "GET", path: base + "/devices/" + byID, token: factoryToken}).want(200).decode(&d)
		if d.Owner != nil {
			t.Fatalf("device %s owned before its claim: %+v", byID, d)
		}
		if d.Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s never online in the product", byID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ok struct {
		OK        bool   `json:"ok"`
		ID        string `json:"id"`
		Connected bool   `json:"connected"`
	}
	e.do(flowReq{method: "POST", path: "/v1/devices", token: token, json: `{"id":"` + byID + `"}`}).want(200).decode(&ok)
	if !ok.OK || ok.ID != byID || !ok.Connected {
		t.Errorf("claim %s by ID: %+v", byID, ok)
	}
	e.waitDevices(token, ids...)
	for _, id := range []string{byCode, byID} {
		t.Run("control "+id, func(t *testing.T) {
			c := *e
			c.t = t
			c.control(token, id)
		})
	}

	// The customer refreshes its token through the app's client.
	e.do(flowReq{method: "POST", path: "/oauth/token", basicID: appID, basicPW: appSecret,
		form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}}}).want(200)

	// The customers:create client is refused everything else, with its
	// credentials as HTTP Basic or as a Bearer "token" (its secret).
	const (
		noToken      = `{"error":"invalid_request","error_description":"The access token was not found"}`
		invalidToken = `{"error":"invalid_token","error_description":"The access token provided is invalid."}`
		badScope     = `{"error":"invalid_scope","error_description":"The client is not allowed to request this scope"}`
		badPassword  = `{"ok":false,"errors":["Bad password"]}`
		noPassword   = `{"ok":false,"errors":["Username and password are required"]}`
	)
	for _, tc := range []struct {
		name   string
		req    flowReq
		status int
		body   string // exact body; "" checks the status only
		// The answer with the secret sent as a Bearer token; zero: 401
		// invalid_token.
		asToken     int
		asTokenBody string
	}{
		{name: "create another customer", req: flowReq{method: "POST", path: base + "/customers",
			form: url.Values{"email": {"second@example.com"}, "password": {"another-password"}}}, status: 201},
		{name: "product token", req: flowReq{method: "POST", path: "/oauth/token",
			form: url.Values{"grant_type": {"client_credentials"}}}, status: 400, body: badScope},
		{name: "customer token", req: flowReq{method: "POST", path: "/oauth/token",
			form: url.Values{"grant_type": {"client_credentials"}, "scope": {"customer=" + email}}}, status: 400, body: badScope},
		{name: "list customers", req: flowReq{method: "GET", path: base + "/customers"}, status: 400, body: noToken},
		{name: "update customer", req: flowReq{method: "PUT", path: base + "/customers/" + email,
			form: url.Values{"password": {"hijacked-password"}}}, status: 400, body: noToken},
		{name: "delete customer", req: flowReq{method: "DELETE", path: base + "/customers/" + email}, status: 400, body: noToken},
		{name: "list devices", req: flowReq{method: "GET", path: "/v1/devices"}, status: 400, body: noToken},
		{name: "list product devices", req: flowReq{method: "GET", path: base + "/devices"}, status: 400, body: noToken},
		{name: "call function", req: flowReq{method: "POST", path: "/v1/devices/" + byID + "/led",
			form: url.Values{"arg": {"off"}}}, status: 400, body: noToken},
		{name: "call product function", req: flowReq{method: "POST", path: base + "/devices/" + byID + "/led",
			form: url.Values{"arg": {"off"}}}, status: 400, body: noToken},
		{name: "product claim code", req: flowReq{method: "POST", path: base + "/device_claims"}, status: 400, body: noToken},
		{name: "product events", req: flowReq{method: "GET", path: base + "/events"}, status: 400, body: noToken},
		{name: "list clients", req: flowReq{method: "GET", path: base + "/clients"}, status: 400, body: noToken},
		{name: "get product", req: flowReq{method: "GET", path: base}, status: 400, body: noToken},
		{name: "list tokens", req: flowReq{method: "GET", path: "/v1/access_tokens"}, status: 401, body: badPassword,
			asToken: 401, asTokenBody: noPassword},
	} {
		t.Run("client/"+tc.name, func(t *testing.T) {
			c := *e
			c.t = t
			rq := tc.req
			rq.basicID, rq.basicPW = appID, appSecret
			r := c.do(rq)
			if r.status != tc.status || (tc.body != "" && string(r.body) != tc.body) {
				t.Errorf("%s %s with Basic client credentials = %d %s; want %d %s", rq.method, rq.path, r.status, r.body, tc.status, tc.body)
			}
			if tc.status == 201 || rq.path == "/oauth/token" {
				return
			}
			// The secret is no access token either.
			status, body := tc.asToken, tc.asTokenBody
			if status == 0 {
				status, body = 401, invalidToken
			}
			rq.basicID, rq.basicPW, rq.token = "", "", appSecret
			if r := c.do(rq); r.status != status || string(r.body) != body {
				t.Errorf("%s %s with the secret as token = %d %s; want %d %s", rq.method, rq.path, r.status, r.body, status, body)
			}
		})
	}
	// Nothing the client was refused changed anything: the customer still
	// logs in with its password and owns both devices, LED on.
	r = e.do(flowReq{method: "POST", path: "/oauth/token", form: url.Values{"grant_type": {"password"},
		"username": {email}, "password": {password}, "client_id": {appID}, "client_secret": {appSecret}}}).want(200)
	e.waitDevices(r.str("access_token"), ids...)
}

// TestFlowDeveloperProvisionsCustomerClaims is the product flow of
// docs/api.md, Claim codes: the developer provisions a device into the
// product with their own token (`wick sim --product`), a customer creates
// a claim code, the device reports it, and the customer owns the device,
// which now has a generated name. Then the same without --product: the
// developer's token would claim the device to the developer, so the
// simulator releases it and the customer's code still decides the owner.
func TestFlowDeveloperProvisionsCustomerClaims(t *testing.T) {
	e := newFlowEnv(t)
	clientID, secret := e.createClient("Lamp Server", "")
	const email = "abu@agrabahmonkeys.com"
	token := e.do(flowReq{method: "POST", path: "/v1/products/" + e.product + "/customers", basicID: clientID, basicPW: secret,
		form: url.Values{"email": {email}, "no_password": {"true"}}}).want(201).str("access_token")
	generated := regexp.MustCompile(`^[a-z]+_[a-z]+$`)

	type device struct {
		ID        string  `json:"id"`
		Name      *string `json:"name"`
		Owner     string  `json:"owner"`
		ProductID int     `json:"product_id"`
		LastApp   *string `json:"last_app"`
	}
	for _, c := range []struct {
		name, prefix string
		codePath     string   // where the customer asks for the code
		extra        []string // further wick sim flags
	}{
		{"developer provisions into the product", "f4", "/v1/products/" + e.product + "/device_claims", []string{"--product", e.product}},
		{"developer provisions, no product", "f5", "/v1/device_claims", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			code := e.do(flowReq{method: "POST", path: c.codePath, token: token}).want(200).str("claim_code")
			id := e.startSim(c.prefix, 1, e.ownerToken, code, "sensorValueEvent", c.extra...)[0]

			// The customer owns the device, in the product, named.
			e.waitDevicesAtLeast(token, id)
			var d device
			e.do(flowReq{method: "GET", path: "/v1/devices/" + id, token: token}).want(200).decode(&d)
			if d.Name == nil || !generated.MatchString(*d.Name) || d.Owner != email || d.ProductID != e.productID || d.LastApp != nil {
				t.Errorf("customer's device %+v (name %v); want a generated name, owner %s, product %d, last_app null",
					d, d.Name, email, e.productID)
			}
			// The name works as the ID, and coreInfo carries it.
			var v struct {
				Result   any `json:"result"`
				CoreInfo struct {
					Name    string  `json:"name"`
					LastApp *string `json:"last_app"`
				} `json:"coreInfo"`
			}
			if d.Name != nil {
				e.do(flowReq{method: "GET", path: "/v1/devices/" + *d.Name + "/on", token: token}).want(200).decode(&v)
				if v.CoreInfo.Name != *d.Name || v.CoreInfo.LastApp != nil {
					t.Errorf("variable by name: coreInfo %+v; want name %s and last_app null", v.CoreInfo, *d.Name)
				}
			}
			// The developer does not own it; the product lists it with its
			// customer.
			var mine []device
			e.do(flowReq{method: "GET", path: "/v1/devices", token: e.ownerToken}).want(200).decode(&mine)
			for _, m := range mine {
				if m.ID == id {
					t.Errorf("the developer owns %s; want the customer to", id)
				}
			}
			var list struct {
				Devices []device `json:"devices"`
			}
			e.do(flowReq{method: "GET", path: "/v1/products/" + e.product + "/devices", token: e.ownerToken,
				form: url.Values{"deviceId": {id}}}).want(200).decode(&list)
			if len(list.Devices) != 1 || list.Devices[0].Owner != email || list.Devices[0].Name == nil || *list.Devices[0].Name != *d.Name {
				t.Errorf("product list %+v; want %s owned by %s", list.Devices, id, email)
			}
		})
	}
}

// waitDevicesAtLeast polls GET /v1/devices with token until it lists ids
// (among others) online and described, and returns the whole list.
func (e *flowEnv) waitDevicesAtLeast(token string, ids ...string) []flowDevice {
	e.t.Helper()
	deadline := time.Now().Add(flowTimeout)
	for {
		r := e.do(flowReq{method: "GET", path: "/v1/devices", token: token}).want(200)
		var devs []flowDevice
		r.decode(&devs)
		ready := 0
		for _, d := range devs {
			if slices.Contains(ids, d.ID) && d.Online && slices.Contains(d.Functions, "led") {
				ready++
			}
		}
		if ready == len(ids) {
			return devs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("GET /v1/devices = %s; want %v online and described", r.body, ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
