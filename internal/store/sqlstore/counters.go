package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// AddCounter counts one event for key in a fixed window, in one atomic
// upsert: a key that is absent or expired at now restarts at 1 with a
// window ending now+window.
func (db *DB) AddCounter(ctx context.Context, key string, now time.Time, window time.Duration) (int64, time.Time, error) {
	var count, expires int64
	err := db.w.QueryRowContext(ctx, db.rebind(`INSERT INTO cluster_counters (key, count, expires_at) VALUES (?, 1, ?)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN cluster_counters.expires_at <= ? THEN 1 ELSE cluster_counters.count + 1 END,
			expires_at = CASE WHEN cluster_counters.expires_at <= ? THEN excluded.expires_at ELSE cluster_counters.expires_at END
		RETURNING count, expires_at`), key, toMS(now.Add(window)), toMS(now), toMS(now)).Scan(&count, &expires)
	if err != nil {
		return 0, time.Time{}, wrap(err, "add counter %q", key)
	}
	return count, fromMS(expires), nil
}

// Counter returns key's count and expiry, or zeros when absent or expired.
func (db *DB) Counter(ctx context.Context, key string, now time.Time) (int64, time.Time, error) {
	var count, expires int64
	err := db.w.QueryRowContext(ctx, db.rebind(`SELECT count, expires_at FROM cluster_counters WHERE key = ? AND expires_at > ?`),
		key, toMS(now)).Scan(&count, &expires)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, time.Time{}, nil
		}
		return 0, time.Time{}, wrap(err, "counter %q", key)
	}
	return count, fromMS(expires), nil
}

// SetCounter sets key's count and expiry.
func (db *DB) SetCounter(ctx context.Context, key string, count int64, expires time.Time) error {
	_, err := db.exec(ctx, db.w, `INSERT INTO cluster_counters (key, count, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET count = excluded.count, expires_at = excluded.expires_at`,
		key, count, toMS(expires))
	return wrap(err, "set counter %q", key)
}

// DeleteCounter removes key.
func (db *DB) DeleteCounter(ctx context.Context, key string) error {
	_, err := db.exec(ctx, db.w, `DELETE FROM cluster_counters WHERE key = ?`, key)
	return wrap(err, "delete counter %q", key)
}

// DeleteExpiredCounters removes the counters expired at now.
func (db *DB) DeleteExpiredCounters(ctx context.Context, now time.Time) (int, error) {
	res, err := db.exec(ctx, db.w, `DELETE FROM cluster_counters WHERE expires_at <= ?`, toMS(now))
	if err != nil {
		return 0, wrap(err, "delete expired counters")
	}
	n, err := res.RowsAffected()
	return int(n), wrap(err, "delete expired counters")
}
