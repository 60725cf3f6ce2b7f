package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
)

// noTeamAccess hides store.TeamAccess from the API, which then authorizes
// a team route with three reads (the product, the user, the membership);
// the device lists stay visible.
type noTeamAccess struct {
	store.Store
	store.DeviceLists
	store.ProductDeviceLists
}

// TestTeamAccessReadEachRequest checks that a user token's team check
// (one store statement, store.TeamAccess) answers as the three reads it
// replaced, and that nothing of it is cached: a membership removed or an
// account deleted in the store, as another node of a cluster does it, is
// refused from the next request on, although the token itself is still
// in the auth cache.
func TestTeamAccessReadEachRequest(t *testing.T) {
	env := apitest.New(t, apitest.Options{InMemory: true})
	ctx := context.Background()
	owner := env.CreateUser("owner@example.com", "pw")
	member := env.CreateUser("member@example.com", "pw")
	outsider := env.CreateUser("outsider@example.com", "pw")
	prod := env.CreateProduct(owner, "fleet")
	env.CreateProduct(outsider, "elsewhere")
	if err := env.DB.AddTeamMember(ctx, &store.TeamMember{ProductID: prod.ID, Username: member.Username, Role: store.RoleDeveloper}); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"owner": env.UserToken(owner), "member": env.UserToken(member), "outsider": env.UserToken(outsider)}
	handlers := map[string]http.Handler{
		"one statement": env.Handler,
		"three reads":   api.New(api.Config{Now: env.Clock.Now}, api.Deps{Store: noTeamAccess{env.DB, env.DB, env.DB}, Auth: env.Auth}, nil),
	}
	id := strconv.FormatInt(prod.ID, 10)
	check := func(step, who string, want int) {
		t.Helper()
		for _, ref := range []string{id, "fleet", strconv.FormatInt(prod.ID+1000, 10), "nope"} {
			w := want
			if ref != id && ref != "fleet" {
				w = http.StatusNotFound // an unknown product first, whoever asks
			}
			for _, path := range []string{"/v1/products/" + ref, "/v1/products/" + ref + "/devices?perPage=25"} {
				for name, h := range handlers {
					r := httptest.NewRequest(http.MethodGet, path, nil)
					r.Header.Set("Authorization", "Bearer "+tokens[who])
					r.RemoteAddr = "192.0.2.1:1234"
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					if rec.Code != w {
						t.Errorf("%s: %s GET %s (%s): %d %s; want %d", step, who, path, name, rec.Code, rec.Body, w)
					}
				}
			}
		}
	}
	check("start", "owner", 200)
	check("start", "member", 200)
	check("start", "outsider", 403)

	if err := env.DB.RemoveTeamMember(ctx, prod.ID, member.Username); err != nil {
		t.Fatal(err)
	}
	check("removed from the team", "member", 403)
	check("removed from the team", "owner", 200)

	if err := env.DB.AddTeamMember(ctx, &store.TeamMember{ProductID: prod.ID, Username: member.Username, Role: store.RoleViewOnly}); err != nil {
		t.Fatal(err)
	}
	check("added again", "member", 200)

	// Deleted in the store directly: the auth cache still holds the token.
	if err := env.DB.DeleteUser(ctx, member.ID); err != nil {
		t.Fatal(err)
	}
	check("account deleted", "member", 401)
	check("account deleted", "owner", 200)
}

// pagesApart hides store.ProductDevicePageAccess from the API, which then
// checks a user's team (store.TeamAccess) before it reads the page
// (store.ProductDevicePages): two round trips on PostgreSQL instead of
// one.
type pagesApart struct {
	store.Store
	store.DeviceLists
	store.ProductDeviceLists
	store.ProductDevicePages
	store.TeamAccess
}

// newPagesApart returns db as pagesApart.
func newPagesApart(db interface {
	store.Store
	store.DeviceLists
	store.ProductDeviceLists
	store.ProductDevicePages
	store.TeamAccess
}) pagesApart {
	return pagesApart{db, db, db, db, db}
}

// pagesApartNoOwners is pagesApart whose page reads leave the owners'
// names out (ProductDevicePageRead.Owners), so that the API reads each
// owner's account apart, as it did before the names came with the page.
type pagesApartNoOwners struct{ pagesApart }

func (p pagesApartNoOwners) ReadProductDevicePage(ctx context.Context, pid, since int64, ids []string) (store.ProductDevicePageRead, error) {
	r, err := p.pagesApart.ProductDevicePages.ReadProductDevicePage(ctx, pid, since, ids)
	r.Owners = nil
	return r, err
}

// TestTeamAccessWithPage checks that a user's team check read together
// with a product device page (store.ProductDevicePageAccess, one round
// trip on PostgreSQL) refuses exactly as the check on its own does and as
// the three reads did: the same status and body for a user off the team,
// removed from it or deleted, and for an unknown product or one the user
// is not on the team of, by ID and by slug, with a bad parameter too, on
// SQLite and PostgreSQL; and that the refusals did go through the
// combined read.
func TestTeamAccessWithPage(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testTeamAccessWithPage(t, apitest.Options{InMemory: true}) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("WICK_TEST_POSTGRES_URL") == "" {
			t.Skip("WICK_TEST_POSTGRES_URL not set")
		}
		testTeamAccessWithPage(t, apitest.Options{DSN: postgresSchema(t)})
	})
}

func testTeamAccessWithPage(t *testing.T, opts apitest.Options) {
	var counter *countingProductLists
	opts.WrapStore = func(st store.Store) store.Store {
		counter = &countingProductLists{Store: st, lists: st.(store.DeviceLists), pl: st.(store.ProductDeviceLists)}
		return countingProductPages{counter, st.(store.ProductDevicePages)}
	}
	opts.Config.GlobalRate = 1 << 30
	env := apitest.New(t, opts)
	ctx := context.Background()
	owner := env.CreateUser("owner@example.com", "pw")
	member := env.CreateUser("member@example.com", "pw")
	outsider := env.CreateUser("outsider@example.com", "pw")
	prod := env.CreateProduct(owner, "fleet")
	other := env.CreateProduct(outsider, "elsewhere")
	if err := env.DB.AddTeamMember(ctx, &store.TeamMember{ProductID: prod.ID, Username: member.Username, Role: store.RoleDeveloper}); err != nil {
		t.Fatal(err)
	}
	var devs []store.Device
	for i := range 40 {
		p := prod.ID
		if i%4 == 0 {
			p = other.ID
		}
		devs = append(devs, store.Device{ID: fmt.Sprintf("ab%022x", i), Name: "unit-" + strconv.Itoa(i), ProductID: p, PlatformID: 12})
	}
	if err := env.DB.InsertDevices(ctx, devs); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"owner": env.UserToken(owner), "member": env.UserToken(member), "outsider": env.UserToken(outsider)}
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"with the page", env.Handler},
		{"apart", api.New(api.Config{Now: env.Clock.Now, GlobalRate: 1 << 30}, api.Deps{Store: newPagesApart(env.DB), Auth: env.Auth}, nil)},
		{"three reads", api.New(api.Config{Now: env.Clock.Now, GlobalRate: 1 << 30}, api.Deps{Store: noTeamAccess{env.DB, env.DB, env.DB}, Auth: env.Auth}, nil)},
	}
	get := func(h http.Handler, who, path string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+tokens[who])
		r.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code, rec.Body.String()
	}
	id, otherID := strconv.FormatInt(prod.ID, 10), strconv.FormatInt(other.ID, 10)
	// The owners' pages cache both products' orders (and their slugs) on
	// every handler, so that the pages below are read with the check.
	for _, h := range handlers {
		for _, p := range []string{id, "fleet"} {
			if code, body := get(h.h, "owner", "/v1/products/"+p+"/devices"); code != http.StatusOK {
				t.Fatalf("%s: owner: %d %s", h.name, code, body)
			}
		}
		for _, p := range []string{otherID, "elsewhere"} {
			if code, body := get(h.h, "outsider", "/v1/products/"+p+"/devices"); code != http.StatusOK {
				t.Fatalf("%s: outsider: %d %s", h.name, code, body)
			}
		}
	}
	check := func(step, who string, ref string, want int) {
		t.Helper()
		for _, q := range []string{"?perPage=25", "?perPage=4&page=2&sortAttr=deviceId", "?sortAttr=bogus", "?quarantined=maybe"} {
			path := "/v1/products/" + ref + "/devices" + q
			w := want
			if w == http.StatusOK && (q == "?sortAttr=bogus" || q == "?quarantined=maybe") {
				w = http.StatusBadRequest // the parameter, once access is granted
			}
			var first string
			for i, h := range handlers {
				code, body := get(h.h, who, path)
				if code != w {
					t.Errorf("%s: %s GET %s (%s): %d %s; want %d", step, who, path, h.name, code, body, w)
				}
				if i == 0 {
					first = body
				} else if body != first {
					t.Errorf("%s: %s GET %s: %s answered %s; %s %s", step, who, path, h.name, body, handlers[0].name, first)
				}
			}
		}
	}
	unknownID := strconv.FormatInt(other.ID+1000, 10)
	check("start", "owner", id, 200)
	check("start", "owner", "fleet", 200)
	check("start", "member", id, 200)
	check("start", "member", "fleet", 200)
	before := counter.withAccess.Load()
	check("start", "outsider", id, 403)
	check("start", "outsider", "fleet", 403)
	check("start", "member", otherID, 403)
	check("start", "member", "elsewhere", 403)
	if counter.withAccess.Load() == before {
		t.Error("no refusal went through the combined read (store.ProductDevicePageAccess)")
	}
	check("start", "owner", unknownID, 404)
	check("start", "owner", "nope", 404)
	check("start", "owner", "99999999999999999999", 404)

	if err := env.DB.RemoveTeamMember(ctx, prod.ID, member.Username); err != nil {
		t.Fatal(err)
	}
	check("removed from the team", "member", id, 403)
	check("removed from the team", "member", "fleet", 403)
	check("removed from the team", "owner", id, 200)

	if err := env.DB.DeleteUser(ctx, member.ID); err != nil {
		t.Fatal(err)
	}
	check("account deleted", "member", id, 401)
	check("account deleted", "member", "fleet", 401)
	check("account deleted", "member", unknownID, 404)
	check("account deleted", "owner", "fleet", 200)
}
