package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	u, err := OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	adds := []struct {
		email, password, want string
		err                   error
	}{
		{" Ann@Example.COM ", "ann-password", "ann@example.com", nil},
		{"ann@example.com", "another-pass", "", errUserExists},
		{"no-at-sign", "ann-password", "", errBadEmail},
		{"@example.com", "ann-password", "", errBadEmail},
		{"ann@", "ann-password", "", errBadEmail},
		{"a b@example.com", "ann-password", "", errBadEmail},
		{"cy@example.com", "short", "", errBadPassword},
		{"cy@example.com", strings.Repeat("x", maxPassword+1), "", errBadPassword},
		{"cy@example.com", strings.Repeat("x", maxPassword), "cy@example.com", nil},
	}
	for _, a := range adds {
		got, err := u.Add(a.email, a.password)
		if got != a.want || !errors.Is(err, a.err) {
			t.Errorf("Add(%q) = %q, %v; want %q, %v", a.email, got, err, a.want, a.err)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v, %v; want mode 0600", fi, err)
	}

	// The table survives a reopen, with hashes only.
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "ann-password") {
		t.Fatal("the users file holds a password")
	}
	u2, err := OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	verifies := []struct {
		email, password, want string
		err                   error
	}{
		{"ANN@example.com", "ann-password", "ann@example.com", nil},
		{"ann@example.com", "ann-passwore", "", errBadLogin},
		{"nobody@example.com", "ann-password", "", errBadLogin},
		{"bad", "ann-password", "", errBadLogin},
	}
	for _, v := range verifies {
		got, err := u2.Verify(v.email, v.password)
		if got != v.want || !errors.Is(err, v.err) {
			t.Errorf("Verify(%q, %q) = %q, %v; want %q, %v", v.email, v.password, got, err, v.want, v.err)
		}
	}
	if err := u2.Remove("ann@example.com"); err != nil {
		t.Fatal(err)
	}
	u3, _ := OpenUsers(path)
	if _, err := u3.Verify("ann@example.com", "ann-password"); !errors.Is(err, errBadLogin) {
		t.Errorf("removed user verifies: %v", err)
	}
	if _, err := u3.Verify("cy@example.com", strings.Repeat("x", maxPassword)); err != nil {
		t.Errorf("cy lost: %v", err)
	}
}

func TestOpenUsersErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o600)
	if _, err := OpenUsers(bad); err == nil || !strings.HasPrefix(err.Error(), "two-legged: ") {
		t.Errorf("corrupt file: %v", err)
	}
	if u, err := OpenUsers(filepath.Join(dir, "missing.json")); err != nil || len(u.users) != 0 {
		t.Errorf("missing file: %v", err)
	}
	// A table whose file cannot be written refuses the sign-up and keeps
	// nothing.
	u, _ := OpenUsers(filepath.Join(dir, "no", "such", "dir", "users.json"))
	if _, err := u.Add("a@b.c", "12345678"); err == nil {
		t.Fatal("Add with an unwritable file succeeded")
	}
	if _, err := u.Verify("a@b.c", "12345678"); !errors.Is(err, errBadLogin) {
		t.Errorf("failed Add left a user: %v", err)
	}
}

func TestParseOptions(t *testing.T) {
	env := map[string]string{"WICK_PRODUCT": "lamp", "WICK_CLIENT_ID": "id", "WICK_CLIENT_SECRET": "secret"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr string
	}{
		{"env", nil, env, options{listen: "127.0.0.1:3001", cfg: Config{API: "http://127.0.0.1:8080", Product: "lamp", ClientID: "id", ClientSecret: "secret"}}, ""},
		{"flags", []string{"--url", "http://h:1", "--users", "u.json", "--secure-cookie", "--product", "p2"}, env,
			options{listen: "127.0.0.1:3001", users: "u.json", cfg: Config{API: "http://h:1", Product: "p2", ClientID: "id", ClientSecret: "secret", SecureCookie: true}}, ""},
		{"no product", nil, map[string]string{"WICK_CLIENT_ID": "id", "WICK_CLIENT_SECRET": "s"}, options{}, "no product"},
		{"no secret", []string{"--product", "p"}, map[string]string{"WICK_CLIENT_ID": "id"}, options{}, "no client credentials"},
		{"bad flag", []string{"--nope"}, env, options{}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseOptions = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
