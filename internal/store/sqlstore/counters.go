package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wick-cloud/wick/internal/ratelimit"
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

// addCountsChunk bounds the keys of one AddCounts statement.
const addCountsChunk = 1000

// AddCounts adds each add's N to its key's counter, creating it with the
// add's expiry (an existing counter keeps the later expiry), and returns
// the new totals by key: the cluster-wide rate limits' sync
// (ratelimit.Shared), one statement per up to addCountsChunk keys. Keys
// that repeat are summed. On PostgreSQL each chunk is one upsert over
// arrays; on SQLite one transaction of single-row upserts.
func (db *DB) AddCounts(ctx context.Context, adds []ratelimit.CountAdd) (map[string]int64, error) {
	sum := make(map[string]int, len(adds))
	var keys []string
	var ns, exps []int64
	for _, a := range adds {
		if i, ok := sum[a.Key]; ok {
			ns[i] += a.N
			exps[i] = max(exps[i], toMS(a.Expires))
			continue
		}
		sum[a.Key] = len(keys)
		keys, ns, exps = append(keys, a.Key), append(ns, a.N), append(exps, toMS(a.Expires))
	}
	totals := make(map[string]int64, len(keys))
	scan := func(rows *sql.Rows) error {
		var (
			k string
			n int64
		)
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		totals[k] = n
		return nil
	}
	for lo := 0; lo < len(keys); lo += addCountsChunk {
		hi := min(lo+addCountsChunk, len(keys))
		var err error
		if db.dialect == dialectPostgres {
			err = db.queryRows(ctx, db.w, scan, `INSERT INTO cluster_counters (key, count, expires_at)
				SELECT * FROM unnest(?::text[], ?::bigint[], ?::bigint[])
				ON CONFLICT (key) DO UPDATE SET count = cluster_counters.count + excluded.count,
					expires_at = GREATEST(cluster_counters.expires_at, excluded.expires_at)
				RETURNING key, count`, keys[lo:hi], ns[lo:hi], exps[lo:hi])
		} else {
			err = db.inTx(ctx, func(tx *sql.Tx) error {
				for i := lo; i < hi; i++ {
					if err := db.queryRows(ctx, tx, scan, `INSERT INTO cluster_counters (key, count, expires_at) VALUES (?, ?, ?)
						ON CONFLICT (key) DO UPDATE SET count = cluster_counters.count + excluded.count,
							expires_at = MAX(cluster_counters.expires_at, excluded.expires_at)
						RETURNING key, count`, keys[i], ns[i], exps[i]); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			return nil, wrap(err, "add %d counts", len(keys))
		}
	}
	return totals, nil
}

// DB keeps the cluster-wide rate limits' counts (ratelimit.Shared).
var _ ratelimit.CountStore = (*DB)(nil)
