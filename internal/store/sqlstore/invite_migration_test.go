package sqlstore

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/store"
)

// TestInviteMigration replays the team-invitations migration over memberships made before
// it: a membership of an address no account holds becomes a pending
// invitation nobody holds the token of; members with accounts, owners and
// API users stay. It runs on SQLite, and on PostgreSQL when
// WICK_TEST_POSTGRES_URL is set.
func TestInviteMigration(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{"sqlite": func(t *testing.T) string { return "sqlite::memory:" }}
	if os.Getenv(postgresEnv) != "" {
		dsns["postgres"] = func(t *testing.T) string { return freshSchema(t) }
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			db, err := Open(ctx, dsn(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			owner := &store.User{Username: "owner@example.com", PasswordHash: "h"}
			member := &store.User{Username: "member@example.com", PasswordHash: "h"}
			for _, u := range []*store.User{owner, member} {
				if err := db.CreateUser(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			p := &store.Product{Slug: "fleet", Name: "Fleet", OwnerID: owner.ID}
			if err := db.CreateProduct(ctx, p, owner.Username); err != nil {
				t.Fatal(err)
			}
			for _, m := range []store.TeamMember{
				{ProductID: p.ID, Username: member.Username, Role: store.RoleDeveloper},
				{ProductID: p.ID, Username: "nobody-yet@example.com", Role: store.RoleAdministrator},
				{ProductID: p.ID, Username: "bot+1@api.wick.local", Role: store.RoleDeveloper, Programmatic: true},
			} {
				if err := db.AddTeamMember(ctx, &m); err != nil {
					t.Fatal(err)
				}
			}
			rerunInviteMigration(ctx, t, db)

			for _, name := range []string{owner.Username, member.Username, "bot+1@api.wick.local"} {
				if _, err := db.TeamMember(ctx, p.ID, name); err != nil {
					t.Errorf("member %s lost: %v", name, err)
				}
			}
			if _, err := db.TeamMember(ctx, p.ID, "nobody-yet@example.com"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("membership of an unregistered address kept: %v", err)
			}
			list, err := db.InvitesByProduct(ctx, p.ID)
			if err != nil || len(list) != 1 || list[0].Username != "nobody-yet@example.com" || list[0].Role != store.RoleAdministrator {
				t.Fatalf("invitations after the migration: %+v, %v", list, err)
			}
			if _, err := db.AcceptInvite(ctx, p.ID, "nobody-yet@example.com"); err != nil {
				t.Errorf("operator accept of a migrated invitation: %v", err)
			}
		})
	}
}

// rerunInviteMigration undoes the team-invitations migration and applies it again, with
// the memberships written meanwhile in place.
func rerunInviteMigration(ctx context.Context, t *testing.T, db *DB) {
	t.Helper()
	steps, err := migrations(migrationFS, db.dialect)
	if err != nil {
		t.Fatal(err)
	}
	version := 0
	for _, m := range steps {
		if strings.HasSuffix(m.name, "_team_invites.sql") {
			version = m.version
		}
	}
	if _, err := db.w.ExecContext(ctx, `DROP TABLE team_invites`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, db.rebind(`DELETE FROM schema_migrations WHERE version = ?`), version); err != nil {
		t.Fatal(err)
	}
	if err := db.migrate(ctx); err != nil {
		t.Fatal(err)
	}
}
