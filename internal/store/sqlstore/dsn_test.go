package sqlstore

import (
	"context"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		dialect dialect
		path    string
		errHas  string // "" for success
	}{
		{dsn: "sqlite:/data/wick.db", dialect: dialectSQLite, path: "/data/wick.db"},
		{dsn: "sqlite:wick.db", dialect: dialectSQLite, path: "wick.db"},
		{dsn: "sqlite:///data/wick.db", dialect: dialectSQLite, path: "/data/wick.db"},
		{dsn: "sqlite:./rel/dir/wick.db", dialect: dialectSQLite, path: "./rel/dir/wick.db"},
		{dsn: "sqlite::memory:", dialect: dialectSQLite, path: ":memory:"},
		{dsn: "postgres://u@localhost:5432/wick", dialect: dialectPostgres},
		{dsn: "postgresql://u@localhost/wick?sslmode=disable", dialect: dialectPostgres},

		{dsn: "", errHas: "empty DSN"},
		{dsn: "sqlite:", errHas: "names no file"},
		{dsn: "sqlite://", errHas: "names no file"},
		{dsn: "sqlite:/data/wick.db?mode=ro", errHas: "no query"},
		{dsn: "sqlite::temp:", errHas: "unknown special SQLite name"},
		{dsn: "mysql://localhost/wick", errHas: `unsupported DSN scheme "mysql"`},
		{dsn: "/data/wick.db", errHas: "no scheme"},
		{dsn: "wick.db", errHas: "no scheme"},
	} {
		got, err := parseDSN(tc.dsn)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "sqlstore: ") {
				t.Errorf("parseDSN(%q) error = %v; want one containing %q", tc.dsn, err, tc.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDSN(%q): %v", tc.dsn, err)
			continue
		}
		if got.dialect != tc.dialect || got.path != tc.path {
			t.Errorf("parseDSN(%q) = %v %q; want %v %q", tc.dsn, got.dialect, got.path, tc.dialect, tc.path)
		}
		if tc.dialect == dialectPostgres && got.url != tc.dsn {
			t.Errorf("parseDSN(%q) url = %q; want it unchanged", tc.dsn, got.url)
		}
	}
}

func TestOpenBadDSN(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		dsn    string
		errHas string
	}{
		{"mysql://root@localhost/wick", "unsupported DSN scheme"},
		{"postgres://wick:s3cret@localhost:notaport/wick", "sqlstore: postgres DSN"},
		{"sqlite:" + t.TempDir() + "/missing-dir/wick.db", "sqlstore: connect to sqlite"},
	} {
		db, err := Open(ctx, tc.dsn, nil)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded; want an error", tc.dsn)
			continue
		}
		if !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("Open(%q) = %v; want an error containing %q", tc.dsn, err, tc.errHas)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error reveals the password: %v", tc.dsn, err)
		}
	}
}

// FuzzParseDSN checks that parseDSN never panics and that what it accepts
// is complete.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"sqlite:/a.db", "sqlite::memory:", "sqlite://x", "postgres://u@h/d", "postgresql://", "x:y", "", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		cfg, err := parseDSN(dsn)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sqlstore: ") {
				t.Errorf("error without prefix: %v", err)
			}
			return
		}
		switch cfg.dialect {
		case dialectSQLite:
			if cfg.path == "" || strings.ContainsAny(cfg.path, "?#") {
				t.Errorf("parseDSN(%q) accepted SQLite path %q", dsn, cfg.path)
			}
		case dialectPostgres:
			if cfg.url != dsn {
				t.Errorf("parseDSN(%q) url = %q", dsn, cfg.url)
			}
		default:
			t.Errorf("parseDSN(%q) accepted with dialect %v", dsn, cfg.dialect)
		}
	})
}

func TestRebindDollar(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT * FROM t WHERE a = ?", "SELECT * FROM t WHERE a = $1"},
		{"INSERT INTO t VALUES (?, ?, ?)", "INSERT INTO t VALUES ($1, $2, $3)"},
		{"?", "$1"},
		{"??", "$1$2"},
		{"a = ? AND b IN (SELECT c FROM d WHERE e = ?) LIMIT ? OFFSET ?", "a = $1 AND b IN (SELECT c FROM d WHERE e = $2) LIMIT $3 OFFSET $4"},
		{"x ? y ? z ? w ? v ? u ? t ? s ? r ? q ?", "x $1 y $2 z $3 w $4 v $5 u $6 t $7 s $8 r $9 q $10"},
	} {
		if got := rebindDollar(tc.in); got != tc.want {
			t.Errorf("rebindDollar(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
	sqliteDB := &DB{dialect: dialectSQLite}
	if got := sqliteDB.rebind("a = ?"); got != "a = ?" {
		t.Errorf("SQLite rebind changed the query: %q", got)
	}
	pgDB := &DB{dialect: dialectPostgres}
	if got := pgDB.rebind("a = ?"); got != "a = $1" {
		t.Errorf("PostgreSQL rebind = %q; want a = $1", got)
	}
}

func TestMigrationFiles(t *testing.T) {
	var versions [2][]int
	for i, d := range []dialect{dialectSQLite, dialectPostgres} {
		steps, err := migrations(migrationFS, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) == 0 {
			t.Fatalf("%s: no migrations", d)
		}
		for j, m := range steps {
			if m.version != j+1 {
				t.Errorf("%s: migration %d is %s; versions must run 1, 2, 3, ...", d, j, m.name)
			}
			if strings.TrimSpace(m.sql) == "" {
				t.Errorf("%s: %s is empty", d, m.name)
			}
			versions[i] = append(versions[i], m.version)
		}
	}
	if len(versions[0]) != len(versions[1]) {
		t.Errorf("SQLite has migrations %v, PostgreSQL %v; want the same steps", versions[0], versions[1])
	}
}

func TestOpenCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	db, err := Open(ctx, "sqlite:"+t.TempDir()+"/wick.db", nil)
	if err == nil {
		db.Close()
		t.Fatal("Open with a cancelled context succeeded")
	}
}
