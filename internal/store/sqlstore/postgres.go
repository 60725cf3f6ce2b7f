package sqlstore

import (
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
