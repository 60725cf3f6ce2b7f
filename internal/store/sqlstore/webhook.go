package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wick-cloud/wick/internal/store"
)

const webhookColumns = `id, user_id, product_id, integration_type, name, event, device_id, disabled,
	settings, created_at, updated_at`

const deliveryColumns = `webhook_id, event_id, event_name, device_id, attempt, at, method, url,
	status, latency_ns, error, response`

// deliveryColumnCount is the number of deliveryColumns, the placeholders of
// one row of a batch insert.
const deliveryColumnCount = 12

// deliveryChunk bounds the rows of one INSERT statement, keeping its
// placeholders (12 a row) well under SQLite's and PostgreSQL's limits.
const deliveryChunk = 500

// idChunk bounds the IDs of one "IN (...)" list.
const idChunk = 500

// CreateWebhook inserts w, assigning w.ID (24 hex) when empty and the
// timestamps when zero. It fails with store.ErrConflict if the ID exists.
func (db *DB) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	if w.ID == "" {
		w.ID = newID()
	}
	t := now()
	stamp(&w.CreatedAt, t)
	stamp(&w.UpdatedAt, t)
	settings, err := json.Marshal(&w.Settings)
	if err != nil {
		return fmt.Errorf("sqlstore: create webhook %q: %w", w.ID, err)
	}
	_, err = db.exec(ctx, db.w, `INSERT INTO webhooks (`+webhookColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.UserID, w.ProductID, w.IntegrationType, w.Name, w.Event, w.DeviceID, w.Disabled,
		string(settings), toMS(w.CreatedAt), toMS(w.UpdatedAt))
	if err == nil {
		w.Version = 1
	}
	return wrap(err, "create webhook %q", w.ID)
}

// WebhookByID returns the webhook or store.ErrNotFound.
func (db *DB) WebhookByID(ctx context.Context, id string) (*store.Webhook, error) {
	w, err := scanWebhook(db.queryRow(ctx, `SELECT `+webhookColumns+`, version FROM webhooks WHERE id = ?`, id))
	if err != nil {
		return nil, wrap(err, "webhook %q", id)
	}
	return w, nil
}

// WebhooksByUser lists a user's sandbox hooks (product 0), oldest first,
// then by ID.
func (db *DB) WebhooksByUser(ctx context.Context, userID string) ([]store.Webhook, error) {
	if userID == "" {
		return nil, nil
	}
	out, err := db.listWebhooks(ctx, `SELECT `+webhookColumns+`, version FROM webhooks
		WHERE user_id = ? AND product_id = 0 ORDER BY created_at, id`, userID)
	return out, wrap(err, "webhooks of user %q", userID)
}

// WebhooksByProduct lists a product's hooks, oldest first, then by ID.
func (db *DB) WebhooksByProduct(ctx context.Context, productID int64) ([]store.Webhook, error) {
	if productID == 0 {
		return nil, nil
	}
	out, err := db.listWebhooks(ctx, `SELECT `+webhookColumns+`, version FROM webhooks
		WHERE product_id = ? ORDER BY created_at, id`, productID)
	return out, wrap(err, "webhooks of product %d", productID)
}

// AllWebhooks lists every webhook by ID.
func (db *DB) AllWebhooks(ctx context.Context) ([]store.Webhook, error) {
	out, err := db.listWebhooks(ctx, `SELECT `+webhookColumns+`, version FROM webhooks ORDER BY id`)
	return out, wrap(err, "all webhooks")
}

// listWebhooks runs a query over webhookColumns on the read pool.
func (db *DB) listWebhooks(ctx context.Context, query string, args ...any) ([]store.Webhook, error) {
	var out []store.Webhook
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		w, err := scanWebhook(rows)
		if err != nil {
			return err
		}
		out = append(out, *w)
		return nil
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateWebhook replaces every field but ID, UserID, ProductID and
// CreatedAt. A zero UpdatedAt becomes now. It fails with
// store.ErrNotFound if the webhook is absent, and with store.ErrStale when
// w.Version is set and the row's differs.
func (db *DB) UpdateWebhook(ctx context.Context, w *store.Webhook) error {
	stamp(&w.UpdatedAt, now())
	settings, err := json.Marshal(&w.Settings)
	if err != nil {
		return fmt.Errorf("sqlstore: update webhook %q: %w", w.ID, err)
	}
	err = db.execVersioned(ctx, "webhooks", w.ID, &w.Version, `UPDATE webhooks SET integration_type = ?, name = ?, event = ?,
		device_id = ?, disabled = ?, settings = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND (? = 0 OR version = ?)`,
		w.IntegrationType, w.Name, w.Event, w.DeviceID, w.Disabled, string(settings),
		toMS(w.UpdatedAt), w.ID, w.Version, w.Version)
	return wrap(err, "update webhook %q", w.ID)
}

// DeleteWebhook removes the webhook and its delivery log in one
// transaction, or fails with store.ErrNotFound.
func (db *DB) DeleteWebhook(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, `DELETE FROM webhooks WHERE id = ?`, id); err != nil {
			return err
		}
		_, err := db.exec(ctx, tx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id)
		return err
	})
	return wrap(err, "delete webhook %q", id)
}

// AddWebhookDeliveries appends ds to the delivery logs in one transaction
// and sets their IDs, then keeps only the newest keep entries of each
// webhook touched (keep ≤ 0 keeps every entry). Entries of webhooks that do
// not exist are dropped silently and keep ID 0. Rows go in with multi-row
// INSERTs of up to deliveryChunk rows.
//
// On PostgreSQL the hooks of the batch are read FOR SHARE, so that a
// concurrent DeleteWebhook either commits first (and its entries are
// dropped here) or waits for this transaction (and removes them too).
func (db *DB) AddWebhookDeliveries(ctx context.Context, ds []*store.WebhookDelivery, keep int) error {
	if len(ds) == 0 {
		return nil
	}
	var hooks []string
	seen := make(map[string]bool)
	for _, d := range ds {
		if !seen[d.WebhookID] {
			seen[d.WebhookID] = true
			hooks = append(hooks, d.WebhookID)
		}
	}
	var (
		rows []*store.WebhookDelivery // the entries of live hooks, in batch order
		ids  []int64                  // their IDs, set after the commit
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		live, err := db.liveWebhooks(ctx, tx, hooks)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if live[d.WebhookID] {
				rows = append(rows, d)
			}
		}
		for chunk := range slices.Chunk(rows, deliveryChunk) {
			got, err := db.insertDeliveries(ctx, tx, chunk)
			if err != nil {
				return err
			}
			ids = append(ids, got...)
		}
		if keep <= 0 {
			return nil
		}
		for _, id := range hooks {
			if !live[id] {
				continue
			}
			if _, err := db.exec(ctx, tx, `DELETE FROM webhook_deliveries WHERE webhook_id = ? AND id <= (
				SELECT id FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
				id, id, keep); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err, "add %d webhook deliveries", len(ds))
	}
	for i, d := range rows {
		d.ID = ids[i]
	}
	return nil
}

// liveWebhooks returns which of ids name existing webhooks, locking them
// against deletion on PostgreSQL until tx ends.
func (db *DB) liveWebhooks(ctx context.Context, tx *sql.Tx, ids []string) (map[string]bool, error) {
	live := make(map[string]bool, len(ids))
	lock := ""
	if db.dialect == dialectPostgres {
		lock = " FOR SHARE"
	}
	for chunk := range slices.Chunk(ids, idChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := `SELECT id FROM webhooks WHERE id IN (` + placeholders(len(chunk)) + `)` + lock
		err := db.queryRows(ctx, tx, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			live[id] = true
			return nil
		}, q, args...)
		if err != nil {
			return nil, err
		}
	}
	return live, nil
}

// insertDeliveries inserts ds with one statement and returns their IDs in
// the order of ds. Both dialects number the rows of a multi-row INSERT in
// the order of its VALUES; RETURNING may list them in any order, so the
// IDs are sorted.
func (db *DB) insertDeliveries(ctx context.Context, tx *sql.Tx, ds []*store.WebhookDelivery) ([]int64, error) {
	var q strings.Builder
	q.WriteString(`INSERT INTO webhook_deliveries (` + deliveryColumns + `) VALUES `)
	row := "(" + placeholders(deliveryColumnCount) + ")"
	args := make([]any, 0, len(ds)*deliveryColumnCount)
	for i, d := range ds {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(row)
		args = append(args, d.WebhookID, int64(d.EventID), cleanText(d.EventName), cleanText(d.DeviceID),
			d.Attempt, toMS(d.At), cleanText(d.Method), cleanText(d.URL), d.Status, int64(d.Latency),
			cleanText(d.Error), cleanText(d.Response))
	}
	q.WriteString(` RETURNING id`)
	ids := make([]int64, 0, len(ds))
	err := db.queryRows(ctx, tx, func(rows *sql.Rows) error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	}, q.String(), args...)
	if err != nil {
		return nil, err
	}
	if len(ids) != len(ds) {
		return nil, fmt.Errorf("inserted %d deliveries, got %d IDs", len(ds), len(ids))
	}
	slices.Sort(ids)
	return ids, nil
}

// WebhookDeliveries returns up to limit newest entries of a webhook's log,
// newest first; limit ≤ 0 returns them all.
func (db *DB) WebhookDeliveries(ctx context.Context, webhookID string, limit int) ([]store.WebhookDelivery, error) {
	q := `SELECT id, ` + deliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC`
	args := []any{webhookID}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	var out []store.WebhookDelivery
	err := db.queryRows(ctx, db.r, func(rows *sql.Rows) error {
		var (
			d         store.WebhookDelivery
			eventID   int64
			at        int64
			latencyNS int64
		)
		if err := rows.Scan(&d.ID, &d.WebhookID, &eventID, &d.EventName, &d.DeviceID, &d.Attempt, &at,
			&d.Method, &d.URL, &d.Status, &latencyNS, &d.Error, &d.Response); err != nil {
			return err
		}
		d.EventID, d.At, d.Latency = uint64(eventID), fromMS(at), time.Duration(latencyNS)
		out = append(out, d)
		return nil
	}, q, args...)
	if err != nil {
		return nil, wrap(err, "deliveries of webhook %q", webhookID)
	}
	return out, nil
}

// scanWebhook reads one row of webhookColumns and the version.
func scanWebhook(row rowScanner) (*store.Webhook, error) {
	var (
		w                store.Webhook
		settings         string
		created, updated int64
	)
	err := row.Scan(&w.ID, &w.UserID, &w.ProductID, &w.IntegrationType, &w.Name, &w.Event,
		&w.DeviceID, &w.Disabled, &settings, &created, &updated, &w.Version)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(settings), &w.Settings); err != nil {
		return nil, fmt.Errorf("decode settings of webhook %q: %w", w.ID, err)
	}
	w.CreatedAt, w.UpdatedAt = fromMS(created), fromMS(updated)
	return &w, nil
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// cleanText makes s storable as text in both dialects: PostgreSQL refuses
// invalid UTF-8 and NUL bytes, which a receiver's response may hold. Both
// become U+FFFD.
func cleanText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
