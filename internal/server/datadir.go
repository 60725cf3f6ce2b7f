package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/config"
)

// lockFile is the file in the data directory that a running `wick serve`
// holds locked; it names the process (docs/operations.md, The data
// directory).
const lockFile = "wick.lock"

// ErrDataInUse reports that another running server holds the data
// directory's lock.
var ErrDataInUse = errors.New("server: data directory in use")

// ErrNoData reports that an admin command found no Wick installation where
// its flags point (and was not asked to create one).
var ErrNoData = errors.New("server: no Wick installation found")

// Where names the data a command uses: the absolute data directory, the
// database (password redacted) and the secret key file.
type Where struct {
	Data          string // absolute data directory
	DB            string // sqlite:PATH (absolute) or a redacted postgres:// URL
	SecretKeyFile string // absolute path
}

// String renders w for a log or error line.
func (w Where) String() string {
	return fmt.Sprintf("data directory %s, database %s", w.Data, w.DB)
}

// Locate resolves cfg's derived defaults and returns the data it points at,
// with absolute paths; it creates and opens nothing.
func Locate(cfg config.Serve) (Where, error) {
	if err := cfg.Resolve(); err != nil {
		return Where{}, err
	}
	w := Where{Data: absPath(cfg.Data), DB: redactDSN(cfg.DB), SecretKeyFile: absPath(cfg.SecretKeyFile)}
	if path, ok := sqlitePath(cfg.DB); ok {
		w.DB = "sqlite:" + absPath(path)
	}
	return w, nil
}

// RequireExisting returns an error wrapping ErrNoData, which says where it
// looked and what to do, unless the data directory, the secret key file
// and (for SQLite) the database file of cfg all exist. The admin commands
// call it so that a typo in --data, or running them from another
// directory, does not silently start a new, empty installation.
func RequireExisting(cfg config.Serve) error {
	w, err := Locate(cfg)
	if err != nil {
		return err
	}
	missing := func(what, path string) error {
		return fmt.Errorf("%w: %s %s does not exist. Pass the --data DIR (or WICK_DATA, and --db) that `wick serve` uses; "+
			"for a new, empty installation there start wick serve once, or give user create, device provision "+
			"or keys server --init", ErrNoData, what, path)
	}
	if st, err := os.Stat(w.Data); err != nil || !st.IsDir() {
		return missing("data directory", w.Data)
	}
	if path, ok := sqlitePath(w.DB); ok {
		if _, err := os.Stat(path); err != nil {
			return missing("database", path)
		}
	}
	if _, err := os.Stat(w.SecretKeyFile); err != nil {
		return missing("secret key file", w.SecretKeyFile)
	}
	return nil
}

// sqlitePath returns the file of a "sqlite:PATH" DSN (query string
// removed); ok is false for other databases and in-memory SQLite.
func sqlitePath(dsn string) (path string, ok bool) {
	rest, found := strings.CutPrefix(dsn, "sqlite:")
	if !found {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest = strings.TrimPrefix(rest, "file:")
	if rest == "" || rest == ":memory:" {
		return "", false
	}
	return rest, true
}

// absPath returns path made absolute, or path itself when that fails.
func absPath(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

// dataLock is the exclusive lock a running server holds on its data
// directory, so that two servers never share one embedded JetStream store,
// SQLite database and key set. The operating system drops the lock when
// the process ends, even on kill -9.
type dataLock struct {
	f       *os.File
	started time.Time
}

// lockData takes the lock of data directory dir (which must exist). When
// another process holds it, the error wraps ErrDataInUse and names the
// holder as it described itself.
func lockData(dir string) (*dataLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("server: lock data directory: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("server: lock data directory %s: %w", absPath(dir), err)
	}
	if !held {
		f.Close()
		holder := "another wick serve"
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			holder = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("%w: %s is locked by %s. Stop that server first, or give this one its own --data directory",
			ErrDataInUse, absPath(dir), holder)
	}
	l := &dataLock{f: f, started: time.Now()}
	l.describe("")
	return l, nil
}

// describe writes who holds the lock into the lock file: the process ID,
// host, start time and, once known, the listeners.
func (l *dataLock) describe(listeners string) {
	if l == nil {
		return
	}
	host, _ := os.Hostname()
	line := fmt.Sprintf("wick serve (pid %d on %s, started %s", os.Getpid(), host, l.started.UTC().Format(time.RFC3339))
	if listeners != "" {
		line += ", " + listeners
	}
	line += ")\n"
	// Best effort: the lock itself is what protects the directory.
	if err := l.f.Truncate(0); err == nil {
		l.f.WriteAt([]byte(line), 0)
	}
}

// release drops the lock; the file stays (removing it would race with a
// server starting at the same moment).
func (l *dataLock) release() {
	if l == nil {
		return
	}
	l.f.Truncate(0)
	l.f.Close()
}
