package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// The back end's own user table: e-mail addresses and password hashes,
// kept in memory and, when a file is given, saved to it as JSON after
// every change. Wick never sees these passwords; its shadow customers
// have none.

// Password hashing: argon2id with the parameters OWASP lists as a minimum
// (19 MiB, two passes, one lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	minPassword  = 8
	maxPassword  = 256
)

// Errors of the user table.
var (
	errUserExists  = errors.New("two-legged: this e-mail address is already registered")
	errBadLogin    = errors.New("two-legged: wrong e-mail address or password")
	errBadEmail    = errors.New("two-legged: email must be an e-mail address")
	errBadPassword = fmt.Errorf("two-legged: password must have %d to %d characters", minPassword, maxPassword)
)

// user is one row of the table.
type user struct {
	Email   string    `json:"email"`
	Salt    []byte    `json:"salt"`
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
}

// Users is the user table.
type Users struct {
	path string // "" keeps the table in memory only

	mu    sync.Mutex
	users map[string]user
}

// OpenUsers loads the table from path (a missing file is an empty table);
// path "" keeps it in memory.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path, users: map[string]user{}}
	if path == "" {
		return u, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("two-legged: users: %w", err)
	}
	var list []user
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("two-legged: users file %s: %w", path, err)
	}
	for _, r := range list {
		u.users[r.Email] = r
	}
	return u, nil
}

// normalizeEmail lower-cases an address and checks its shape.
func normalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	at := strings.IndexByte(email, '@')
	if at < 1 || at == len(email)-1 || len(email) > 254 || strings.ContainsAny(email, " \t\r\n/\\") {
		return "", errBadEmail
	}
	return email, nil
}

func hashPassword(password string, salt []byte) []byte {
	return argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
}

// Add registers a new user with the normalized email and password's hash.
// It returns the normalized email.
func (u *Users) Add(email, password string) (string, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return "", err
	}
	if len(password) < minPassword || len(password) > maxPassword {
		return "", errBadPassword
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	r := user{Email: email, Salt: salt, Hash: hashPassword(password, salt), Created: time.Now().UTC()}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.users[email]; ok {
		return "", errUserExists
	}
	u.users[email] = r
	if err := u.saveLocked(); err != nil {
		delete(u.users, email)
		return "", err
	}
	return email, nil
}

// Remove deletes a user (to undo a sign-up whose shadow customer could
// not be created).
func (u *Users) Remove(email string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	r, ok := u.users[email]
	if !ok {
		return nil
	}
	delete(u.users, email)
	if err := u.saveLocked(); err != nil {
		u.users[email] = r
		return err
	}
	return nil
}

// Verify checks a password and returns the normalized email.
func (u *Users) Verify(email, password string) (string, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return "", errBadLogin
	}
	u.mu.Lock()
	r, ok := u.users[email]
	u.mu.Unlock()
	if !ok {
		// Spend the same time as for a known user, so that timing does
		// not tell which addresses are registered.
		hashPassword(password, make([]byte, saltLen))
		return "", errBadLogin
	}
	if subtle.ConstantTimeCompare(hashPassword(password, r.Salt), r.Hash) != 1 {
		return "", errBadLogin
	}
	return email, nil
}

// saveLocked writes the table to its file (a temporary file renamed over
// it, so that a crash leaves the old or the new table).
func (u *Users) saveLocked() error {
	if u.path == "" {
		return nil
	}
	list := make([]user, 0, len(u.users))
	for _, r := range u.users {
		list = append(list, r)
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("two-legged: users: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(u.path), ".users-*")
	if err != nil {
		return fmt.Errorf("two-legged: users: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("two-legged: users: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("two-legged: users: %w", err)
	}
	if err := os.Rename(tmp.Name(), u.path); err != nil {
		return fmt.Errorf("two-legged: users: %w", err)
	}
	return nil
}

// newSessionID returns a random cookie value.
func newSessionID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
