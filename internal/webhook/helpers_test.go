package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/bus/bustest"
	"github.com/wick-cloud/wick/internal/netguard"
	"github.com/wick-cloud/wick/internal/store"
)

// memStore is an in-memory store.Webhooks for the engine's tests.
type memStore struct {
	mu         sync.Mutex
	hooks      map[string]store.Webhook
	deliveries map[string][]store.WebhookDelivery
	nextID     int64
	fail       error // AddWebhookDeliveries fails with it when set
}

func newMemStore() *memStore {
	return &memStore{hooks: make(map[string]store.Webhook), deliveries: make(map[string][]store.WebhookDelivery)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *memStore) CreateWebhook(_ context.Context, w *store.Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.ID == "" {
		w.ID = randomHex(12)
	}
	if _, ok := s.hooks[w.ID]; ok {
		return store.ErrConflict
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now().UTC()
	}
	s.hooks[w.ID] = *w
	return nil
}

func (s *memStore) WebhookByID(_ context.Context, id string) (*store.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.hooks[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &w, nil
}

func (s *memStore) list(keep func(*store.Webhook) bool) []store.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Webhook
	for _, w := range s.hooks {
		if keep(&w) {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *memStore) WebhooksByUser(_ context.Context, u string) ([]store.Webhook, error) {
	return s.list(func(w *store.Webhook) bool { return w.ProductID == 0 && w.UserID == u }), nil
}

func (s *memStore) WebhooksByProduct(_ context.Context, p int64) ([]store.Webhook, error) {
	return s.list(func(w *store.Webhook) bool { return w.ProductID == p }), nil
}

func (s *memStore) AllWebhooks(context.Context) ([]store.Webhook, error) {
	return s.list(func(*store.Webhook) bool { return true }), nil
}

func (s *memStore) UpdateWebhook(_ context.Context, w *store.Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hooks[w.ID]; !ok {
		return store.ErrNotFound
	}
	s.hooks[w.ID] = *w
	return nil
}

func (s *memStore) DeleteWebhook(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hooks[id]; !ok {
		return store.ErrNotFound
	}
	delete(s.hooks, id)
	delete(s.deliveries, id)
	return nil
}

func (s *memStore) AddWebhookDeliveries(_ context.Context, ds []*store.WebhookDelivery, keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	for _, d := range ds {
		if _, ok := s.hooks[d.WebhookID]; !ok {
			continue
		}
		s.nextID++
		d.ID = s.nextID
		l := append(s.deliveries[d.WebhookID], *d)
		if keep > 0 && len(l) > keep {
			l = l[len(l)-keep:]
		}
		s.deliveries[d.WebhookID] = l
	}
	return nil
}

func (s *memStore) WebhookDeliveries(_ context.Context, id string, limit int) ([]store.WebhookDelivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := slices.Clone(s.deliveries[id])
	slices.Reverse(l)
	if limit > 0 && len(l) > limit {
		l = l[:limit]
	}
	return l, nil
}

// harness is an engine on its own bus and memory store.
type harness struct {
	t    testing.TB
	bus  *bus.Bus
	st   *memStore
	eng  *Engine
	user string
}

type harnessOpts struct {
	ring    bool      // no JetStream
	jsDir   string    // JetStream directory (default: a temp dir)
	prefix  string    // bus subject prefix (default: random)
	st      *memStore // default: new
	noStart bool
	strict  bool // the production policy: no private addresses
}

// testConfig is a Config with short timings for tests.
func testConfig() Config {
	return Config{
		Timeout:      2 * time.Second,
		BackoffBase:  20 * time.Millisecond,
		BackoffMax:   100 * time.Millisecond,
		LogFlush:     20 * time.Millisecond,
		ScanInterval: 100 * time.Millisecond,
		IdleAfter:    500 * time.Millisecond,
	}
}

func newHarness(t testing.TB, cfg Config, o harnessOpts) *harness {
	t.Helper()
	bc := bus.Config{SubjectPrefix: o.prefix}
	if bc.SubjectPrefix == "" {
		bc.SubjectPrefix = "t" + randomHex(4)
	}
	if !o.ring {
		bc.JetStreamDir = o.jsDir
		if bc.JetStreamDir == "" {
			bc.JetStreamDir = t.TempDir()
		}
	}
	b, err := bus.Open(context.Background(), bc, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := o.st
	if st == nil {
		st = newMemStore()
	}
	eng, err := New(cfg, Deps{Store: st, Bus: b, Outbound: netguard.Policy{AllowPrivate: !o.strict},
		OpenSecret: func(_ string, sealed []byte) ([]byte, error) { return append([]byte("opened:"), sealed...), nil },
		OpenCredentials: func(_ string, sealed []byte) ([]byte, error) {
			plain, ok := bytes.CutPrefix(sealed, []byte("sealed:"))
			if !ok {
				return nil, errors.New("not sealed by the test")
			}
			return plain, nil
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, bus: b, st: st, eng: eng, user: "user" + randomHex(4)}
	if !o.noStart {
		if err := eng.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { h.close() })
	return h
}

// close stops the engine and closes the bus (idempotent).
func (h *harness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.eng.Stop(ctx); err != nil {
		h.t.Errorf("stop: %v", err)
	}
	h.bus.Close()
}

// addHook stores a sandbox hook of h.user for events starting with event.
func (h *harness) addHook(event, url string, mod func(*store.Webhook)) *store.Webhook {
	h.t.Helper()
	w := &store.Webhook{UserID: h.user, IntegrationType: store.IntegrationWebhook, Event: event,
		Settings: store.WebhookSettings{URL: url, RequestType: "POST", RejectUnauthorized: true}}
	if mod != nil {
		mod(w)
	}
	if err := h.st.CreateWebhook(context.Background(), w); err != nil {
		h.t.Fatal(err)
	}
	h.eng.WebhooksChanged(context.Background(), w.ID)
	return w
}

// publish publishes an event of h.user through the bus.
func (h *harness) publish(name, data string) {
	h.t.Helper()
	if err := h.bus.Publish(context.Background(), bus.Event{Name: name, Data: data, DeviceID: "dev1", UserID: h.user}); err != nil {
		h.t.Fatal(err)
	}
}

// hookEvents subscribes to the hook events of h.user.
func (h *harness) hookEvents() *bus.Subscription {
	return bustest.Subscribe(h.t, h.bus, bus.Filter{UserID: h.user, NamePrefix: "hook-"}, 4096)
}

// deliveries returns hook id's delivery log, oldest first.
func (h *harness) deliveries(id string) []store.WebhookDelivery {
	l, _ := h.st.WebhookDeliveries(context.Background(), id, 0)
	slices.Reverse(l)
	return l
}

// hookStats returns one hook's counters.
func (h *harness) hookStats(id string) HookStats {
	return h.eng.Stats(context.Background()).Hooks[id]
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receiver is a local HTTP receiver that records requests.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	handle func(w http.ResponseWriter, r *http.Request, n int) // n counts from 1; nil: 200 "ok"
}

type received struct {
	method, path, query string
	header              http.Header
	body                string
	at                  time.Time
}

func newReceiver(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	rc := &receiver{handle: handle}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body), time.Now()})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.handle == nil {
			w.Write([]byte("ok"))
			return
		}
		rc.handle(w, r, n)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}
