package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

var productTests = []test{
	{"TeamAccess", func(t *testing.T, s store.Store) {
		ta, ok := s.(store.TeamAccess)
		if !ok {
			t.Skip("the store does not implement store.TeamAccess")
		}
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		dev := addUser(t, s, "dev@example.com")
		other := addUser(t, s, "other@example.com")
		p := &store.Product{Slug: "fleet", Name: "Fleet", OwnerID: owner.ID, Settings: []byte(`{"a":1}`)}
		must(t, s.CreateProduct(ctx, p, owner.Username))
		q := &store.Product{Slug: "other", Name: "Other", OwnerID: other.ID}
		must(t, s.CreateProduct(ctx, q, other.Username))
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p.ID, Username: dev.Username, Role: store.RoleDeveloper}))
		want, err := s.ProductByID(ctx, p.ID)
		must(t, err)
		check := func(what, userID string, exists, member bool) {
			t.Helper()
			for _, by := range []string{"ID", "slug"} {
				var a *store.ProductAccess
				if by == "ID" {
					a, err = ta.ProductAccessByID(ctx, p.ID, userID)
				} else {
					a, err = ta.ProductAccessBySlug(ctx, p.Slug, userID)
				}
				if err != nil {
					t.Fatalf("%s by %s: %v", what, by, err)
				}
				checkEqual(t, what+" product by "+by, &a.Product, want)
				if a.UserExists != exists || a.Member != member {
					t.Errorf("%s by %s: UserExists, Member = %v, %v; want %v, %v", what, by, a.UserExists, a.Member, exists, member)
				}
			}
		}
		check("owner", owner.ID, true, true)
		check("developer", dev.ID, true, true)
		check("member of another product", other.ID, true, false)
		check("unknown user", "no-such-user", false, false)

		// Removed from the team: refused by the next read.
		must(t, s.RemoveTeamMember(ctx, p.ID, dev.Username))
		check("removed developer", dev.ID, true, false)
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p.ID, Username: dev.Username, Role: store.RoleViewOnly}))
		check("added again", dev.ID, true, true)
		// Membership follows the username: a renamed user keeps it only
		// when the team is renamed with it, as TeamMember sees it.
		dev.Username = "renamed@example.com"
		must(t, s.UpdateUser(ctx, dev))
		check("renamed user, team not renamed", dev.ID, true, false)
		must(t, s.RenameTeamMember(ctx, "dev@example.com", dev.Username))
		check("renamed user and team", dev.ID, true, true)
		must(t, s.DeleteUser(ctx, dev.ID))
		check("deleted user", dev.ID, false, false)

		_, err = ta.ProductAccessByID(ctx, q.ID+1000, owner.ID)
		wantErr(t, "unknown product ID", err, store.ErrNotFound)
		_, err = ta.ProductAccessBySlug(ctx, "nope", owner.ID)
		wantErr(t, "unknown slug", err, store.ErrNotFound)
		_, err = ta.ProductAccessBySlug(ctx, "nope", "no-such-user")
		wantErr(t, "unknown slug and user", err, store.ErrNotFound)
	}},
	{"TeamAccessWithPage", func(t *testing.T, s store.Store) {
		pa, ok := s.(store.ProductDevicePageAccess)
		if !ok {
			t.Skip("the store does not implement store.ProductDevicePageAccess")
		}
		ta := s.(store.TeamAccess)
		pp := s.(store.ProductDevicePages)
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		dev := addUser(t, s, "dev@example.com")
		other := addUser(t, s, "other@example.com")
		p := &store.Product{Slug: "fleet", Name: "Fleet", OwnerID: owner.ID}
		must(t, s.CreateProduct(ctx, p, owner.Username))
		q := &store.Product{Slug: "other", Name: "Other", OwnerID: other.ID}
		must(t, s.CreateProduct(ctx, q, other.Username))
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p.ID, Username: dev.Username, Role: store.RoleDeveloper}))
		ids := []string{"e00fce68000000000000a001", "e00fce68000000000000a002", "e00fce68000000000000a003"}
		for i, id := range ids[:2] {
			_, err := s.ProvisionDevice(ctx, id, store.KeyRSA, testKey(10+i), p.ID)
			must(t, err)
		}
		_, err := s.ProvisionDevice(ctx, ids[2], store.KeyRSA, testKey(12), q.ID)
		must(t, err)
		// The first device belongs to dev, the second to a customer.
		cust := &store.Customer{ProductID: p.ID, Email: "buyer@example.com", PasswordHash: "x"}
		must(t, s.CreateCustomer(ctx, cust))
		for i, set := range []func(d *store.Device){func(d *store.Device) { d.OwnerID = dev.ID }, func(d *store.Device) { d.CustomerID = cust.ID }} {
			d, err := s.DeviceByID(ctx, ids[i])
			must(t, err)
			set(d)
			must(t, s.UpdateDevice(ctx, d))
		}
		wantOwners := []store.DeviceOwnerName{{OwnerID: dev.ID, Name: dev.Username}, {CustomerID: cust.ID, Name: cust.Email}}
		// check reads p's page as userID with the product of ref: the
		// access as TeamAccess reads it, the page as ReadProductDevicePage
		// reads it when granted, else the zero read.
		check := func(what, userID string, ref store.ProductRef, granted bool) {
			t.Helper()
			a, r, err := pa.ReadProductDevicePageFor(ctx, ref, userID, p.ID, 0, ids)
			must(t, err)
			var want *store.ProductAccess
			if ref.Slug != "" {
				want, err = ta.ProductAccessBySlug(ctx, ref.Slug, userID)
			} else {
				want, err = ta.ProductAccessByID(ctx, ref.ID, userID)
			}
			must(t, err)
			checkEqual(t, what+": access", a, want)
			if a.Granted(p.ID) != granted {
				t.Errorf("%s: granted = %v; want %v", what, a.Granted(p.ID), granted)
			}
			if !granted {
				if r.State != (store.ProductDeviceList{}) || r.Versions != nil || r.Rows != nil || r.Changed != nil {
					t.Errorf("%s: refused, but the page read %+v", what, r)
				}
				return
			}
			page, err := pp.ReadProductDevicePage(ctx, p.ID, 0, ids)
			must(t, err)
			if r.State != page.State || r.State.Devices != 2 || len(r.Versions) != 2 || len(r.Rows) != len(page.Rows) {
				t.Errorf("%s: page read %+v; ReadProductDevicePage %+v", what, r, page)
			}
			checkOwners(t, what, r.Owners, wantOwners)
			checkOwners(t, what+", ReadProductDevicePage", page.Owners, wantOwners)
		}
		check("owner by ID", owner.ID, store.ProductRef{ID: p.ID}, true)
		check("owner by slug", owner.ID, store.ProductRef{Slug: p.Slug}, true)
		check("developer", dev.ID, store.ProductRef{ID: p.ID}, true)
		check("not on the team", other.ID, store.ProductRef{ID: p.ID}, false)
		check("not on the team, by slug", other.ID, store.ProductRef{Slug: p.Slug}, false)
		check("on the team of another product than the one read", other.ID, store.ProductRef{ID: q.ID}, false)
		check("another product's slug", other.ID, store.ProductRef{Slug: q.Slug}, false)
		check("unknown user", "no-such-user", store.ProductRef{ID: p.ID}, false)
		// A customer deleted releases its devices.
		must(t, s.DeleteCustomer(ctx, cust.ID))
		wantOwners = wantOwners[:1]
		check("customer gone", owner.ID, store.ProductRef{ID: p.ID}, true)
		must(t, s.RemoveTeamMember(ctx, p.ID, dev.Username))
		check("removed developer", dev.ID, store.ProductRef{ID: p.ID}, false)
		must(t, s.DeleteUser(ctx, dev.ID))
		check("deleted user", dev.ID, store.ProductRef{Slug: p.Slug}, false)
		wantOwners = nil // released by the deleted account
		check("owner's account deleted", owner.ID, store.ProductRef{Slug: p.Slug}, true)

		for _, ref := range []store.ProductRef{{ID: q.ID + 1000}, {Slug: "nope"}} {
			a, r, err := pa.ReadProductDevicePageFor(ctx, ref, owner.ID, p.ID, 0, ids)
			wantErr(t, fmt.Sprintf("unknown product %+v", ref), err, store.ErrNotFound)
			if a != nil || r.State != (store.ProductDeviceList{}) || r.Versions != nil {
				t.Errorf("unknown product %+v: %+v, %+v", ref, a, r)
			}
		}
	}},
	{"CreateAssignsIDAndOwner", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		before := time.Now()
		p := &store.Product{Slug: "first", Name: "First", OwnerID: owner.ID}
		must(t, s.CreateProduct(ctx, p, owner.Username))
		after := time.Now()
		if p.ID <= 0 {
			t.Fatalf("ID = %d; want positive", p.ID)
		}
		got, err := s.ProductByID(ctx, p.ID)
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, after)
		if string(got.Settings) != "{}" {
			t.Errorf("Settings = %q; want {} for empty", got.Settings)
		}
		m, err := s.TeamMember(ctx, p.ID, owner.Username)
		must(t, err)
		want := &store.TeamMember{ProductID: p.ID, Username: owner.Username, Role: store.RoleOwner, CreatedAt: m.CreatedAt}
		checkEqual(t, "owner membership", m, want)
		checkStamped(t, "owner membership CreatedAt", m.CreatedAt, before, after)

		p2 := &store.Product{Slug: "second", Name: "Second", OwnerID: owner.ID}
		must(t, s.CreateProduct(ctx, p2, owner.Username))
		if p2.ID <= p.ID {
			t.Errorf("second ID %d not above first %d", p2.ID, p.ID)
		}
	}},
	{"RoundTrip", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		settings := []byte(`{ "b": [1, 2.50, true], "a": {"nested": "x\u00e9"} }`)
		p := &store.Product{
			Slug: "my-fleet", Name: "My Fleet", Description: "Ünïcode — and 'quotes'",
			PlatformID: 32, OwnerID: owner.ID, Settings: settings, CreatedAt: base,
		}
		must(t, s.CreateProduct(ctx, p, owner.Username))
		want := *p
		want.Settings = settings
		want.CreatedAt = at(0)
		got, err := s.ProductByID(ctx, p.ID)
		must(t, err)
		checkEqual(t, "ProductByID", got, &want)
		got, err = s.ProductBySlug(ctx, "my-fleet")
		must(t, err)
		checkEqual(t, "ProductBySlug", got, &want)
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		addProduct(t, s, "taken", owner)
		other := addUser(t, s, "other@example.com")
		err := s.CreateProduct(ctx, &store.Product{Slug: "taken", Name: "again"}, other.Username)
		wantErr(t, "CreateProduct(same slug)", err, store.ErrConflict)
		// The failed create left no membership behind.
		ps, err := s.ProductsForMember(ctx, other.Username)
		must(t, err)
		if len(ps) != 0 {
			t.Errorf("ProductsForMember after failed create = %+v; want none", ps)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p := addProduct(t, s, "exists", owner)
		_, err := s.ProductByID(ctx, p.ID+1000)
		wantErr(t, "ProductByID", err, store.ErrNotFound)
		_, err = s.ProductBySlug(ctx, "missing")
		wantErr(t, "ProductBySlug", err, store.ErrNotFound)
		_, err = s.TeamMember(ctx, p.ID, "stranger@example.com")
		wantErr(t, "TeamMember(stranger)", err, store.ErrNotFound)
		_, err = s.TeamMember(ctx, p.ID+1000, owner.Username)
		wantErr(t, "TeamMember(other product)", err, store.ErrNotFound)
		err = s.RemoveTeamMember(ctx, p.ID, "stranger@example.com")
		wantErr(t, "RemoveTeamMember", err, store.ErrNotFound)
	}},
	{"ProductsForMember", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p1 := addProduct(t, s, "p1", owner)
		p2 := addProduct(t, s, "p2", owner)
		p3 := addProduct(t, s, "p3", owner)
		// Joined out of ID order; listed in ID order.
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p3.ID, Username: "dev@example.com", Role: store.RoleDeveloper}))
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p1.ID, Username: "dev@example.com", Role: store.RoleViewOnly}))
		for _, tc := range []struct {
			username string
			want     []*store.Product
		}{
			{"dev@example.com", []*store.Product{p1, p3}},
			{owner.Username, []*store.Product{p1, p2, p3}},
			{"nobody@example.com", nil},
		} {
			got, err := s.ProductsForMember(ctx, tc.username)
			must(t, err)
			var want []store.Product
			for _, p := range tc.want {
				q, err := s.ProductByID(ctx, p.ID)
				must(t, err)
				want = append(want, *q)
			}
			checkList(t, "ProductsForMember("+tc.username+")", got, want)
		}
	}},
	{"Team", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p := addProduct(t, s, "team", owner)
		q := addProduct(t, s, "elsewhere", owner)
		ownerM, err := s.TeamMember(ctx, p.ID, owner.Username)
		must(t, err)
		// Given times out of insertion order: listed by creation.
		late := store.TeamMember{ProductID: p.ID, Username: "late@example.com", Role: store.RoleSupport, CreatedAt: base.Add(2 * time.Hour)}
		early := store.TeamMember{ProductID: p.ID, Username: "early@example.com", Role: store.RoleAdministrator, Programmatic: true, CreatedAt: base.Add(time.Hour)}
		must(t, s.AddTeamMember(ctx, &late))
		must(t, s.AddTeamMember(ctx, &early))
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: q.ID, Username: "late@example.com", Role: store.RoleDeveloper}))
		late.CreatedAt, early.CreatedAt = at(2*time.Hour), at(time.Hour)

		dup := store.TeamMember{ProductID: p.ID, Username: "late@example.com", Role: store.RoleOwner}
		wantErr(t, "AddTeamMember(again)", s.AddTeamMember(ctx, &dup), store.ErrConflict)

		got, err := s.TeamMember(ctx, p.ID, "early@example.com")
		must(t, err)
		checkEqual(t, "TeamMember", got, &early)

		// The owner joined at creation, now; base is in the past.
		team, err := s.TeamMembers(ctx, p.ID)
		must(t, err)
		checkList(t, "TeamMembers", team, []store.TeamMember{early, late, *ownerM})

		must(t, s.RemoveTeamMember(ctx, p.ID, "late@example.com"))
		wantErr(t, "RemoveTeamMember(again)", s.RemoveTeamMember(ctx, p.ID, "late@example.com"), store.ErrNotFound)
		team, err = s.TeamMembers(ctx, p.ID)
		must(t, err)
		checkList(t, "TeamMembers after remove", team, []store.TeamMember{early, *ownerM})
		// The membership in the other product stays.
		if _, err := s.TeamMember(ctx, q.ID, "late@example.com"); err != nil {
			t.Errorf("membership in other product: %v", err)
		}
		team, err = s.TeamMembers(ctx, q.ID+1000)
		must(t, err)
		if len(team) != 0 {
			t.Errorf("TeamMembers(unknown product) = %+v; want none", team)
		}
	}},
	{"RenameTeamMember", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		owner := addUser(t, s, "owner@example.com")
		p1 := addProduct(t, s, "p1", owner)
		p2 := addProduct(t, s, "p2", owner)
		p3 := addProduct(t, s, "p3", owner)
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p1.ID, Username: "old@example.com", Role: store.RoleDeveloper, CreatedAt: base}))
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p2.ID, Username: "old@example.com", Role: store.RoleSupport, Programmatic: true, CreatedAt: base}))
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p3.ID, Username: "taken@example.com", Role: store.RoleSupport, CreatedAt: base}))

		must(t, s.RenameTeamMember(ctx, "old@example.com", "new@example.com"))
		for _, want := range []store.TeamMember{
			{ProductID: p1.ID, Username: "new@example.com", Role: store.RoleDeveloper, CreatedAt: at(0)},
			{ProductID: p2.ID, Username: "new@example.com", Role: store.RoleSupport, Programmatic: true, CreatedAt: at(0)},
		} {
			got, err := s.TeamMember(ctx, want.ProductID, want.Username)
			must(t, err)
			checkEqual(t, "renamed membership", got, &want)
			_, err = s.TeamMember(ctx, want.ProductID, "old@example.com")
			wantErr(t, "TeamMember(old name)", err, store.ErrNotFound)
		}
		ps, err := s.ProductsForMember(ctx, "old@example.com")
		must(t, err)
		if len(ps) != 0 {
			t.Errorf("ProductsForMember(old) = %d products; want 0", len(ps))
		}
		ps, err = s.ProductsForMember(ctx, "new@example.com")
		must(t, err)
		if len(ps) != 2 || ps[0].ID != p1.ID || ps[1].ID != p2.ID {
			t.Errorf("ProductsForMember(new) = %+v; want p1, p2", ps)
		}

		// A name with no memberships renames nothing, without error.
		must(t, s.RenameTeamMember(ctx, "nobody@example.com", "someone@example.com"))

		// Renaming onto a name already on one of the teams fails and changes
		// nothing, on any team.
		must(t, s.AddTeamMember(ctx, &store.TeamMember{ProductID: p3.ID, Username: "new@example.com", Role: store.RoleViewOnly}))
		err = s.RenameTeamMember(ctx, "new@example.com", "taken@example.com")
		wantErr(t, "RenameTeamMember(onto member)", err, store.ErrConflict)
		ps, err = s.ProductsForMember(ctx, "new@example.com")
		must(t, err)
		if len(ps) != 3 {
			t.Errorf("after a failed rename new@ is on %d teams; want 3", len(ps))
		}
	}},
}

// checkOwners fails the test unless got holds the owners of want, in any
// order.
func checkOwners(t *testing.T, what string, got, want []store.DeviceOwnerName) {
	t.Helper()
	byID := func(a, b store.DeviceOwnerName) int {
		return strings.Compare(a.OwnerID+"/"+a.CustomerID, b.OwnerID+"/"+b.CustomerID)
	}
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if !slices.Equal(got, want) {
		t.Errorf("%s: owners %+v; want %+v", what, got, want)
	}
}
