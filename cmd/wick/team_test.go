package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

// TestTeamAndPasswordCommands covers the operator's tools without e-mail:
// wick team invites, wick team accept (the address joins with its
// invitation's role) and wick user password (new password, tokens
// revoked).
func TestTeamAndPasswordCommands(t *testing.T) {
	dir := t.TempDir()
	wick := func(stdin string, args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(append(args, "--data", dir), strings.NewReader(stdin), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := wick("owner-password\n", "user", "create", "owner@example.com", "--password-stdin", "--init"); code != 0 {
		t.Fatalf("user create: %d %s", code, out)
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "wick.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	owner, err := db.UserByUsername(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Product{Slug: "widget", Name: "Widget", OwnerID: owner.ID}
	if err := db.CreateProduct(ctx, p, owner.Username); err != nil {
		t.Fatal(err)
	}
	if err := db.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: "new@example.com", Role: store.RoleSupport,
		InvitedBy: owner.Username, TokenHash: "h", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tok := "0123456789abcdef0123456789abcdef01234567"
	if err := db.CreateToken(ctx, &store.Token{Hash: auth.HashToken(tok), Kind: store.KindUser, UserID: owner.ID}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"invites of the product", "", []string{"team", "invites", "--product", "widget"}, 0, "new@example.com  Support  invited by owner@example.com"},
		{"invites of the address", "", []string{"team", "invites", "--user", "NEW@example.com"}, 0, "new@example.com"},
		{"invites needs one selector", "", []string{"team", "invites"}, 2, "Usage: wick team"},
		{"accept a stranger", "", []string{"team", "accept", "widget", "nobody@example.com"}, 1, "no pending invitation"},
		{"accept", "", []string{"team", "accept", "widget", "new@example.com"}, 0, "new@example.com joined the team of product"},
		{"accept twice", "", []string{"team", "accept", "widget", "new@example.com"}, 1, "no pending invitation"},
		{"no invitation left", "", []string{"team", "invites", "--product", "widget"}, 0, "no pending invitations"},
		{"password of nobody", "long-password\n", []string{"user", "password", "nobody@example.com", "--password-stdin"}, 1, "no user"},
		{"password too short", "short\n", []string{"user", "password", "owner@example.com", "--password-stdin"}, 1, "at least 8"},
		{"password needs stdin", "", []string{"user", "password", "owner@example.com"}, 2, "--password-stdin is required"},
		{"password", "a-new-password\n", []string{"user", "password", "owner@example.com", "--password-stdin"}, 0, "tokens are revoked"},
	}
	for _, c := range cases {
		code, out := wick(c.stdin, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, out)
		}
	}
	m, err := db.TeamMember(ctx, p.ID, "new@example.com")
	if err != nil || m.Role != store.RoleSupport {
		t.Errorf("membership after accept: %+v, %v", m, err)
	}
	u, err := db.UserByUsername(ctx, "owner@example.com")
	if err != nil || !auth.VerifyPassword(u.PasswordHash, "a-new-password") {
		t.Errorf("new password not set: %v", err)
	}
	if _, err := db.TokenByHash(ctx, auth.HashToken(tok)); err == nil {
		t.Error("token survived wick user password")
	}
	for _, args := range [][]string{{"team", "invites", "-h"}, {"team", "accept", "-h"}, {"user", "password", "-h"}} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != 0 ||
			!strings.Contains(out.String()+errb.String(), "Usage: wick "+args[0]) || strings.Contains(errb.String(), "`") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
	}
}
