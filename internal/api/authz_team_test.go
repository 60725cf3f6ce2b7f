package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
