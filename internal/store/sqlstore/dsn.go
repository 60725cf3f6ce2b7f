package sqlstore

import (
	"errors"
	"fmt"
	"strings"
)

// memoryPath is the SQLite path of a private in-memory database.
const memoryPath = ":memory:"

// dsnConfig is a parsed DSN.
type dsnConfig struct {
	dialect dialect
	path    string // SQLite: file path or memoryPath
	url     string // PostgreSQL: the URL as given
}

// errEmptyDSN reports a missing DSN.
var errEmptyDSN = errors.New(`sqlstore: empty DSN; want "sqlite:PATH" or "postgres://..."`)

// parseDSN splits dsn into a dialect and the driver's own name for the
// database. It accepts "sqlite:PATH", "sqlite://PATH" (PATH may itself start
// with "/"), "sqlite::memory:", and "postgres://" or "postgresql://" URLs.
func parseDSN(dsn string) (dsnConfig, error) {
	switch {
	case dsn == "":
		return dsnConfig{}, errEmptyDSN
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return dsnConfig{dialect: dialectPostgres, url: dsn}, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		switch {
		case path == "":
			return dsnConfig{}, fmt.Errorf("sqlstore: DSN %q names no file; want \"sqlite:PATH\"", dsn)
		case strings.ContainsAny(path, "?#"):
			return dsnConfig{}, fmt.Errorf("sqlstore: DSN %q: SQLite paths take no query or fragment", dsn)
		case path != memoryPath && strings.HasPrefix(path, ":"):
			return dsnConfig{}, fmt.Errorf("sqlstore: DSN %q: unknown special SQLite name %q (only %q)", dsn, path, memoryPath)
		}
		return dsnConfig{dialect: dialectSQLite, path: path}, nil
	}
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok || strings.ContainsAny(scheme, "/\\ ") {
		return dsnConfig{}, fmt.Errorf("sqlstore: DSN has no scheme; want \"sqlite:PATH\" or \"postgres://...\"")
	}
	return dsnConfig{}, fmt.Errorf("sqlstore: unsupported DSN scheme %q; want \"sqlite\" or \"postgres\"", scheme)
}
