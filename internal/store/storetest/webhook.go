package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// addWebhook creates a webhook of userID (and productID, 0 for a sandbox
// hook) created at base+offset.
func addWebhook(t *testing.T, s store.Store, id, userID string, productID int64, offset time.Duration) store.Webhook {
	t.Helper()
	w := store.Webhook{
		ID: id, UserID: userID, ProductID: productID, IntegrationType: store.IntegrationWebhook,
		Event: "temp", Settings: store.WebhookSettings{URL: "https://example.com/" + id, RequestType: "POST",
			RejectUnauthorized: true},
		CreatedAt: base.Add(offset), UpdatedAt: base.Add(offset),
	}
	must(t, s.CreateWebhook(t.Context(), &w))
	w.CreatedAt, w.UpdatedAt = at(offset), at(offset)
	return w
}

// delivery returns a log entry of hook for event n, sent at base+n s.
func delivery(hook string, n int) *store.WebhookDelivery {
	return &store.WebhookDelivery{
		WebhookID: hook, EventID: uint64(n), EventName: fmt.Sprintf("temp/%d", n), DeviceID: "0123456789abcdef01234567",
		Attempt: 1, At: at(time.Duration(n) * time.Second), Method: "POST", URL: "https://example.com/in",
		Status: 200, Latency: time.Duration(n) * time.Millisecond,
	}
}

// deliveryIDs returns the IDs of a log, in its order.
func deliveryIDs(log []store.WebhookDelivery) []int64 {
	out := make([]int64, len(log))
	for i, d := range log {
		out[i] = d.ID
	}
	return out
}

// checkLog fails the test unless hook's whole log holds exactly the
// entries want, newest (last of want) first.
func checkLog(t *testing.T, s store.Store, hook string, want []*store.WebhookDelivery) {
	t.Helper()
	got, err := s.WebhookDeliveries(t.Context(), hook, 0)
	must(t, err)
	exp := make([]store.WebhookDelivery, len(want))
	for i, d := range want {
		exp[len(want)-1-i] = *d
	}
	checkList(t, "log of "+hook, got, exp)
}

var webhookTests = []test{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		body := "{{PARTICLE_EVENT_VALUE}}"
		full := store.Webhook{
			ID: "0b0000000000000000000001", UserID: "0123456789abcdef01234567", ProductID: 10001,
			IntegrationType: store.IntegrationWebhook, Name: "Temperatures", Event: "temp/",
			DeviceID: "fedcba9876543210fedcba98", Disabled: true,
			Settings: store.WebhookSettings{
				URL: "https://example.com/{{PARTICLE_DEVICE_ID}}?x=1", RequestType: "PUT",
				JSON:             json.RawMessage(`{"value":"{{PARTICLE_EVENT_VALUE}}","n":[1,2]}`),
				Query:            map[string]string{"a": "b", "{{k}}": "é"},
				Headers:          map[string]string{"X-Key": "secret"},
				Auth:             &store.BasicAuth{Username: "u", Password: "p"},
				ResponseTemplate: "{{t}}", ResponseTopic: "{{PARTICLE_DEVICE_ID}}/r",
				ErrorResponseTopic: "e", NoDefaults: true, RejectUnauthorized: false,
				Unchunked: true, DataURLResponseEvent: true, SigningSecret: []byte{1, 0, 255},
				Extra: map[string]json.RawMessage{"topic": json.RawMessage(`"projects/x"`)},
			},
			CreatedAt: at(0), UpdatedAt: at(time.Minute), Version: 1,
		}
		w := full
		w.Version = 0 // set by CreateWebhook
		w.CreatedAt, w.UpdatedAt = base, base.Add(time.Minute)
		must(t, s.CreateWebhook(ctx, &w))
		checkEqual(t, "created (normalised in place)", &w, &full)
		got, err := s.WebhookByID(ctx, full.ID)
		must(t, err)
		checkEqual(t, "WebhookByID", got, &full)

		// Form and Body variants, and a hook with every optional field empty.
		for _, settings := range []store.WebhookSettings{
			{URL: "http://h/", RequestType: "POST", Form: map[string]string{"f": "{{x}}"}, RejectUnauthorized: true},
			{URL: "http://h/", RequestType: "POST", Body: &body},
			{URL: "http://h/", RequestType: "GET", JSON: json.RawMessage(`"{\"v\":{{n}}}"`)},
		} {
			want := store.Webhook{UserID: "u1", IntegrationType: store.IntegrationWebhook, Event: "e", Settings: settings}
			before := time.Now()
			w := want
			must(t, s.CreateWebhook(ctx, &w))
			if len(w.ID) != 24 {
				t.Errorf("assigned ID %q; want 24 hex characters", w.ID)
			}
			checkStamped(t, "CreatedAt", w.CreatedAt, before, time.Now())
			if !w.UpdatedAt.Equal(w.CreatedAt) {
				t.Errorf("UpdatedAt = %v; want CreatedAt %v", w.UpdatedAt, w.CreatedAt)
			}
			want.ID, want.CreatedAt, want.UpdatedAt, want.Version = w.ID, w.CreatedAt, w.UpdatedAt, 1
			got, err := s.WebhookByID(ctx, w.ID)
			must(t, err)
			checkEqual(t, "WebhookByID", got, &want)
		}
	}},
	{"ConflictAndNotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		w := addWebhook(t, s, "0b0000000000000000000001", "u1", 0, 0)
		dup := w
		wantErr(t, "CreateWebhook(same ID)", s.CreateWebhook(ctx, &dup), store.ErrConflict)
		_, err := s.WebhookByID(ctx, "0b00000000000000000000ff")
		wantErr(t, "WebhookByID", err, store.ErrNotFound)
		missing := w
		missing.ID = "0b00000000000000000000ff"
		wantErr(t, "UpdateWebhook", s.UpdateWebhook(ctx, &missing), store.ErrNotFound)
		wantErr(t, "DeleteWebhook", s.DeleteWebhook(ctx, missing.ID), store.ErrNotFound)
		log, err := s.WebhookDeliveries(ctx, missing.ID, 10)
		must(t, err)
		checkList(t, "WebhookDeliveries(missing)", log, nil)
	}},
	{"Lists", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		a2 := addWebhook(t, s, "0b0000000000000000000001", "user-a", 0, 2*time.Hour)
		a1 := addWebhook(t, s, "0b0000000000000000000002", "user-a", 0, time.Hour)
		b1 := addWebhook(t, s, "0b0000000000000000000003", "user-b", 0, 0)
		p2 := addWebhook(t, s, "0b0000000000000000000004", "user-a", 10001, 3*time.Hour)
		p1 := addWebhook(t, s, "0b0000000000000000000005", "user-b", 10001, time.Minute)
		q1 := addWebhook(t, s, "0b0000000000000000000006", "", 10002, 0)
		for _, tc := range []struct {
			name string
			list func() ([]store.Webhook, error)
			want []store.Webhook
		}{
			{"WebhooksByUser(user-a)", func() ([]store.Webhook, error) { return s.WebhooksByUser(ctx, "user-a") }, []store.Webhook{a1, a2}},
			{"WebhooksByUser(user-b)", func() ([]store.Webhook, error) { return s.WebhooksByUser(ctx, "user-b") }, []store.Webhook{b1}},
			{"WebhooksByUser(nobody)", func() ([]store.Webhook, error) { return s.WebhooksByUser(ctx, "nobody") }, nil},
			{"WebhooksByUser(empty)", func() ([]store.Webhook, error) { return s.WebhooksByUser(ctx, "") }, nil},
			{"WebhooksByProduct(10001)", func() ([]store.Webhook, error) { return s.WebhooksByProduct(ctx, 10001) }, []store.Webhook{p1, p2}},
			{"WebhooksByProduct(10002)", func() ([]store.Webhook, error) { return s.WebhooksByProduct(ctx, 10002) }, []store.Webhook{q1}},
			{"WebhooksByProduct(none)", func() ([]store.Webhook, error) { return s.WebhooksByProduct(ctx, 10003) }, nil},
			{"WebhooksByProduct(0)", func() ([]store.Webhook, error) { return s.WebhooksByProduct(ctx, 0) }, nil},
			{"AllWebhooks", func() ([]store.Webhook, error) { return s.AllWebhooks(ctx) }, []store.Webhook{a2, a1, b1, p2, p1, q1}},
		} {
			got, err := tc.list()
			must(t, err)
			checkList(t, tc.name, got, tc.want)
		}
	}},
	{"UpdateAndDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		w := addWebhook(t, s, "0b0000000000000000000001", "user-a", 10001, 0)
		other := addWebhook(t, s, "0b0000000000000000000002", "user-a", 10001, 0)
		body := "raw"
		want := store.Webhook{
			ID: w.ID, UserID: w.UserID, ProductID: w.ProductID, IntegrationType: "GoogleCloudPubSub",
			Name: "renamed", Event: "other", DeviceID: "dev", Disabled: true,
			Settings: store.WebhookSettings{URL: "https://example.org/", RequestType: "DELETE", Body: &body,
				Extra: map[string]json.RawMessage{"k": json.RawMessage(`{"a":1}`)}},
			CreatedAt: w.CreatedAt, UpdatedAt: at(time.Hour),
		}
		upd := want // no Version: unchecked
		want.Version = 2
		upd.UserID, upd.ProductID, upd.CreatedAt = "user-b", 5, at(-time.Hour) // not mutable: ignored
		upd.UpdatedAt = base.Add(time.Hour)
		must(t, s.UpdateWebhook(ctx, &upd))
		got, err := s.WebhookByID(ctx, w.ID)
		must(t, err)
		checkEqual(t, "after update", got, &want)

		// A zero UpdatedAt becomes now.
		upd = want
		upd.UpdatedAt = time.Time{}
		before := time.Now()
		must(t, s.UpdateWebhook(ctx, &upd))
		got, err = s.WebhookByID(ctx, w.ID)
		must(t, err)
		checkStamped(t, "UpdatedAt", got.UpdatedAt, before, time.Now())

		must(t, s.AddWebhookDeliveries(ctx, []*store.WebhookDelivery{delivery(w.ID, 1), delivery(other.ID, 2)}, 10))
		must(t, s.DeleteWebhook(ctx, w.ID))
		_, err = s.WebhookByID(ctx, w.ID)
		wantErr(t, "WebhookByID(deleted)", err, store.ErrNotFound)
		wantErr(t, "DeleteWebhook(again)", s.DeleteWebhook(ctx, w.ID), store.ErrNotFound)
		log, err := s.WebhookDeliveries(ctx, w.ID, 0)
		must(t, err)
		checkList(t, "log of the deleted hook", log, nil)
		log, err = s.WebhookDeliveries(ctx, other.ID, 0)
		must(t, err)
		if len(log) != 1 {
			t.Errorf("log of the other hook has %d entries; want 1", len(log))
		}
	}},
	{"StaleUpdate", func(t *testing.T, s store.Store) {
		w := addWebhook(t, s, "0b0000000000000000000001", "user-a", 0, 0)
		checkStaleUpdate(t, func(ctx context.Context) (string, int64, error) {
			h, err := s.WebhookByID(ctx, w.ID)
			if err != nil {
				return "", 0, err
			}
			return h.Name, h.Version, nil
		}, func(ctx context.Context, name string, version int64) (int64, error) {
			h, err := s.WebhookByID(ctx, w.ID)
			if err != nil {
				return 0, err
			}
			h.Name, h.Version = name, version
			err = s.UpdateWebhook(ctx, h)
			return h.Version, err
		})
	}},
	{"Deliveries", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		h1 := addWebhook(t, s, "0b0000000000000000000001", "u1", 0, 0)
		h2 := addWebhook(t, s, "0b0000000000000000000002", "u1", 0, 0)
		full := &store.WebhookDelivery{
			WebhookID: h1.ID, EventID: math.MaxUint64 - 1, EventName: "temp/é", DeviceID: "dev",
			Attempt: 3, At: base, Method: "GET", URL: "https://example.com/?q=1", Status: 0,
			Latency: 20*time.Second + time.Nanosecond, Error: "timeout", Response: "partial",
		}
		gone := delivery("0b00000000000000000000ff", 9) // no such hook
		batch := []*store.WebhookDelivery{delivery(h1.ID, 1), gone, delivery(h2.ID, 2), full, delivery(h1.ID, 3)}
		must(t, s.AddWebhookDeliveries(ctx, batch, 0))
		if gone.ID != 0 {
			t.Errorf("entry of a missing hook got ID %d; want 0", gone.ID)
		}
		var last int64
		for i, d := range batch {
			if d == gone {
				continue
			}
			if d.ID <= last {
				t.Errorf("batch[%d].ID = %d; want > %d (increasing in batch order)", i, d.ID, last)
			}
			last = d.ID
		}
		full.At = at(0)
		checkLog(t, s, h1.ID, []*store.WebhookDelivery{batch[0], full, batch[4]})
		checkLog(t, s, h2.ID, []*store.WebhookDelivery{batch[2]})
		checkLog(t, s, gone.WebhookID, nil)

		// limit selects the newest.
		got, err := s.WebhookDeliveries(ctx, h1.ID, 2)
		must(t, err)
		if want := []int64{batch[4].ID, full.ID}; fmt.Sprint(deliveryIDs(got)) != fmt.Sprint(want) {
			t.Errorf("WebhookDeliveries(limit 2) IDs = %v; want %v", deliveryIDs(got), want)
		}

		// Empty batches are fine.
		must(t, s.AddWebhookDeliveries(ctx, nil, 1))

		// Text a receiver may send that PostgreSQL cannot store as is.
		odd := delivery(h2.ID, 4)
		odd.Response, odd.Error = "a\x00b\xffc", "bad \xc3"
		must(t, s.AddWebhookDeliveries(ctx, []*store.WebhookDelivery{odd}, 0))
		got, err = s.WebhookDeliveries(ctx, h2.ID, 1)
		must(t, err)
		if len(got) != 1 || got[0].Response != "a\uFFFDb\uFFFDc" || got[0].Error != "bad \uFFFD" {
			t.Errorf("stored odd text = %+v; want U+FFFD replacements", got)
		}
	}},
	{"Pruning", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		h1 := addWebhook(t, s, "0b0000000000000000000001", "u1", 0, 0)
		h2 := addWebhook(t, s, "0b0000000000000000000002", "u1", 0, 0)
		var first []*store.WebhookDelivery
		for i := range 5 {
			first = append(first, delivery(h1.ID, i), delivery(h2.ID, i))
		}
		must(t, s.AddWebhookDeliveries(ctx, first, 0))
		// A batch touching only h1 prunes h1 to the newest 3; h2 keeps 5.
		second := []*store.WebhookDelivery{delivery(h1.ID, 10), delivery(h1.ID, 11)}
		must(t, s.AddWebhookDeliveries(ctx, second, 3))
		checkLog(t, s, h1.ID, []*store.WebhookDelivery{first[8], second[0], second[1]})
		h2log, err := s.WebhookDeliveries(ctx, h2.ID, 0)
		must(t, err)
		if len(h2log) != 5 {
			t.Errorf("untouched hook's log has %d entries; want 5", len(h2log))
		}
		// A batch larger than keep keeps its own newest entries.
		var third []*store.WebhookDelivery
		for i := range 4 {
			third = append(third, delivery(h2.ID, 20+i))
		}
		must(t, s.AddWebhookDeliveries(ctx, third, 2))
		checkLog(t, s, h2.ID, third[2:])
	}},
	{"LargeBatch", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		hooks := []store.Webhook{
			addWebhook(t, s, "0b0000000000000000000001", "u1", 0, 0),
			addWebhook(t, s, "0b0000000000000000000002", "u1", 0, 0),
			addWebhook(t, s, "0b0000000000000000000003", "u1", 0, 0),
		}
		const n = 1500 // several INSERT statements
		batch := make([]*store.WebhookDelivery, n)
		for i := range batch {
			batch[i] = delivery(hooks[i%len(hooks)].ID, i)
		}
		must(t, s.AddWebhookDeliveries(ctx, batch, 400))
		for i := 1; i < n; i++ {
			if batch[i].ID <= batch[i-1].ID {
				t.Fatalf("batch[%d].ID = %d after %d; want increasing", i, batch[i].ID, batch[i-1].ID)
			}
		}
		for j, h := range hooks {
			got, err := s.WebhookDeliveries(ctx, h.ID, 0)
			must(t, err)
			if len(got) != 400 {
				t.Fatalf("log of hook %d has %d entries; want 400", j, len(got))
			}
			// The newest 400 of this hook, newest first.
			newest := n - len(hooks) + j
			if newest >= n {
				newest -= len(hooks)
			}
			if got[0].ID != batch[newest].ID || got[0].EventID != uint64(newest) {
				t.Errorf("newest entry of hook %d = event %d; want %d", j, got[0].EventID, newest)
			}
		}
	}},
	{"ConcurrentAddAndDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const hooks = 4
		ids := make([]string, hooks)
		for i := range ids {
			ids[i] = addWebhook(t, s, fmt.Sprintf("0b00000000000000000000%02x", i+1), "u1", 0, 0).ID
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := range 10 {
					var batch []*store.WebhookDelivery
					for _, id := range ids {
						batch = append(batch, delivery(id, g*100+round))
					}
					if err := s.AddWebhookDeliveries(ctx, batch, 50); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range ids[:2] {
				time.Sleep(time.Millisecond)
				if err := s.DeleteWebhook(ctx, id); err != nil {
					errs <- err
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i, id := range ids {
			log, err := s.WebhookDeliveries(ctx, id, 0)
			must(t, err)
			if i < 2 && len(log) != 0 {
				t.Errorf("deleted hook %s keeps %d log entries", id, len(log))
			}
			if i >= 2 && len(log) != 40 {
				t.Errorf("hook %s has %d log entries; want 40", id, len(log))
			}
		}
	}},
	{"DeleteUserRemovesSandboxHooks", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		gone := addUser(t, s, "gone@example.com")
		kept := addUser(t, s, "kept@example.com")
		p := addProduct(t, s, "widget", kept)
		mine := addWebhook(t, s, "0b0000000000000000000001", gone.ID, 0, 0)
		prod := addWebhook(t, s, "0b0000000000000000000002", gone.ID, p.ID, 0)
		theirs := addWebhook(t, s, "0b0000000000000000000003", kept.ID, 0, 0)
		must(t, s.AddWebhookDeliveries(ctx, []*store.WebhookDelivery{
			delivery(mine.ID, 1), delivery(prod.ID, 2), delivery(theirs.ID, 3)}, 0))

		must(t, s.DeleteUser(ctx, gone.ID))
		for id, want := range map[string]bool{mine.ID: false, prod.ID: true, theirs.ID: true} {
			_, err := s.WebhookByID(ctx, id)
			if got := exists(t, "WebhookByID", err); got != want {
				t.Errorf("webhook %s present = %v; want %v", id, got, want)
			}
			log, err := s.WebhookDeliveries(ctx, id, 0)
			must(t, err)
			if (len(log) == 1) != want {
				t.Errorf("webhook %s log has %d entries; want %v", id, len(log), want)
			}
		}
	}},
}
