package sqlstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens a connection pool to the PostgreSQL server named by
// url. Unknown URL query parameters, such as search_path, are sent to the
// server as run-time parameters of every connection.
func openPostgres(url string, log *slog.Logger) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx redacts the password from its parse errors.
		return nil, fmt.Errorf("sqlstore: postgres DSN: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
	return &DB{dialect: dialectPostgres, w: db, r: db, log: log}, nil
}

// Analyze gathers PostgreSQL's planner statistics of the tables that
// device lists read, as autovacuum does some time after large writes;
// bulk loaders (the benchmarks' fleets) call it so that their first reads
// are planned as they would be in a store that has run for a while. A
// no-op on SQLite, whose planner uses no statistics unless ANALYZE ran
// once, and keeps them then.
func (db *DB) Analyze(ctx context.Context) error {
	if db.dialect != dialectPostgres {
		return nil
	}
	for _, t := range []string{"users", "customers", "devices", "product_device_lists", "product_device_changes"} {
		if _, err := db.w.ExecContext(ctx, "ANALYZE "+t); err != nil {
			return fmt.Errorf("sqlstore: analyze %s: %w", t, err)
		}
	}
	return nil
}
