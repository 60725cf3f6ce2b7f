package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

var inviteTests = []test{
	{"PendingGrantsNothing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p := addProduct(t, s, "fleet", owner)
		inv := &store.Invite{ProductID: p.ID, Username: "new@example.com", Role: store.RoleAdministrator,
			InvitedBy: owner.Username, TokenHash: "h1", ExpiresAt: base.Add(time.Hour), CreatedAt: base}
		must(t, s.PutInvite(ctx, inv))
		if _, err := s.TeamMember(ctx, p.ID, "new@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("TeamMember of a pending invitee: %v; want ErrNotFound", err)
		}
		if prods, err := s.ProductsForMember(ctx, "new@example.com"); err != nil || len(prods) != 0 {
			t.Fatalf("ProductsForMember of a pending invitee = %v, %v", prods, err)
		}
		want := &store.Invite{ProductID: p.ID, Username: "new@example.com", Role: store.RoleAdministrator,
			InvitedBy: owner.Username, TokenHash: "h1", ExpiresAt: at(time.Hour), CreatedAt: at(0)}
		got, err := s.InviteByHash(ctx, "h1")
		must(t, err)
		checkEqual(t, "InviteByHash", got, want)
		list, err := s.InvitesByProduct(ctx, p.ID)
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("InvitesByProduct: %d invitations; want 1", len(list))
		}
		checkEqual(t, "InvitesByProduct", &list[0], want)
		list, err = s.InvitesByUsername(ctx, "new@example.com")
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("InvitesByUsername: %d invitations; want 1", len(list))
		}
		checkEqual(t, "InvitesByUsername", &list[0], want)
		if _, err := s.InviteByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("InviteByHash(unknown) = %v; want ErrNotFound", err)
		}
	}},
	{"PutReplacesAndRefusesMembers", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p := addProduct(t, s, "fleet", owner)
		must(t, s.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: "a@example.com", Role: store.RoleDeveloper,
			TokenHash: "old", ExpiresAt: base.Add(time.Hour), CreatedAt: base}))
		must(t, s.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: "a@example.com", Role: store.RoleSupport,
			TokenHash: "new", ExpiresAt: base.Add(2 * time.Hour), CreatedAt: base.Add(time.Minute)}))
		if _, err := s.InviteByHash(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("replaced secret still works: %v", err)
		}
		got, err := s.InviteByHash(ctx, "new")
		must(t, err)
		if got.Role != store.RoleSupport {
			t.Errorf("Role = %q after replacement", got.Role)
		}
		list, err := s.InvitesByProduct(ctx, p.ID)
		must(t, err)
		if len(list) != 1 {
			t.Errorf("%d invitations after a replacement; want 1", len(list))
		}
		err = s.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: owner.Username, Role: store.RoleDeveloper,
			TokenHash: "x", ExpiresAt: base.Add(time.Hour)})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("PutInvite of a member = %v; want ErrConflict", err)
		}
	}},
	{"Accept", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p := addProduct(t, s, "fleet", owner)
		must(t, s.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: "a@example.com", Role: store.RoleViewOnly,
			TokenHash: "h", ExpiresAt: base.Add(time.Hour)}))
		m, err := s.AcceptInvite(ctx, p.ID, "a@example.com")
		must(t, err)
		if m.Role != store.RoleViewOnly || m.Username != "a@example.com" || m.ProductID != p.ID || m.Programmatic {
			t.Errorf("membership %+v", m)
		}
		got, err := s.TeamMember(ctx, p.ID, "a@example.com")
		must(t, err)
		checkEqual(t, "TeamMember", got, m)
		if _, err := s.InviteByHash(ctx, "h"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("accepted invitation still pending: %v", err)
		}
		if _, err := s.AcceptInvite(ctx, p.ID, "a@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second AcceptInvite = %v; want ErrNotFound", err)
		}
		if err := s.DeleteInvite(ctx, p.ID, "a@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteInvite(absent) = %v; want ErrNotFound", err)
		}
	}},
	{"AcceptByMemberConflicts", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p := addProduct(t, s, "fleet", owner)
		must(t, s.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: "a@example.com", Role: store.RoleDeveloper,
			TokenHash: "h", ExpiresAt: base.Add(time.Hour)}))
		// Someone added the address directly meanwhile (an API user, say).
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p.ID, Username: "a@example.com", Role: store.RoleSupport}))
		if _, err := s.AcceptInvite(ctx, p.ID, "a@example.com"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("AcceptInvite by a member = %v; want ErrConflict", err)
		}
		if _, err := s.InviteByHash(ctx, "h"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("conflicting invitation kept: %v", err)
		}
		m, err := s.TeamMember(ctx, p.ID, "a@example.com")
		must(t, err)
		if m.Role != store.RoleSupport {
			t.Errorf("membership role changed to %q", m.Role)
		}
	}},
	{"DeleteAndExpire", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p := addProduct(t, s, "fleet", owner)
		must(t, s.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: "a@example.com", Role: store.RoleDeveloper,
			TokenHash: "ha", ExpiresAt: base.Add(time.Hour)}))
		must(t, s.PutInvite(ctx, &store.Invite{ProductID: p.ID, Username: "b@example.com", Role: store.RoleDeveloper,
			TokenHash: "hb", ExpiresAt: base.Add(-time.Hour)}))
		must(t, s.DeleteInvite(ctx, p.ID, "a@example.com"))
		if _, err := s.InviteByHash(ctx, "ha"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted invitation found: %v", err)
		}
		if _, err := s.DeleteExpired(ctx, base); err != nil {
			t.Fatal(err)
		}
		if _, err := s.InviteByHash(ctx, "hb"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired invitation kept by DeleteExpired: %v", err)
		}
	}},
}
