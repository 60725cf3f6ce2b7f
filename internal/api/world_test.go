package api_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// Fixture constants of a world.
const (
	ownerName     = "owner@example.com"
	ownerPass     = "owner-password"
	otherName     = "other@example.com"
	otherPass     = "other-password"
	customerEmail = "jane@example.com"
	customerPass  = "customer-password"
	memberName    = "dev@example.com"
	webRedirect   = "https://app.example.com/setup"
	apiUserScopes = "customers:list products:get clients:list"
)

// world is the shared fixture of the API tests: two users each owning a
// product, clients of several kinds, customers, and tokens of every kind.
type world struct {
	*apitest.Env

	owner, other          *store.User
	product, otherProduct *store.Product

	// Clients of product: full access, customers:create only, and a web
	// customers:create client; a client of otherProduct; owner's own.
	fullClient, fullSecret     string
	createClient, createSecret string
	webClient, webSecret       string
	otherClient, otherSecret   string
	userClient, userSecret     string

	customer, otherCustomer *store.Customer

	ownerToken, otherToken        string
	customerToken, otherCustToken string
	productToken                  string
	expiredToken, revokedToken    string
	apiUserToken, apiUserName     string
	victimToken                   string // an owner token anyone may revoke by value
}

// Devices of the world: one claimed by owner, one in product claimed by
// customer, both online with a function authzFunction and a variable
// authzVariable (a double the fake DeviceCaller answers); and
// freeDeviceID, unowned, in no product, never connected. None has a key.
const (
	ownerDeviceID    = "0a0000000000000000000001"
	customerDeviceID = "0a0000000000000000000002"
	freeDeviceID     = "0a0000000000000000000003"
	authzFunction    = "authz_fn"
	authzVariable    = "authz_var"
)

// newWorld builds a world over a fresh Env. The clock ends two hours past
// apitest.Epoch, so expiredToken (one hour) has expired.
func newWorld(t testing.TB, cfg api.Config) *world {
	t.Helper()
	return newWorldOpts(t, apitest.Options{Config: cfg})
}

// newWorldOpts is newWorld with all the Env options.
func newWorldOpts(t testing.TB, opts apitest.Options) *world {
	t.Helper()
	e := apitest.New(t, opts)
	w := &world{Env: e}
	ctx := context.Background()

	w.owner = e.CreateUser(ownerName, ownerPass)
	w.other = e.CreateUser(otherName, otherPass)
	w.product = e.CreateProduct(w.owner, "widget")
	w.otherProduct = e.CreateProduct(w.other, "gadget")
	if err := e.Store.AddTeamMember(ctx, &store.TeamMember{ProductID: w.product.ID, Username: memberName, Role: store.RoleDeveloper}); err != nil {
		t.Fatal(err)
	}

	w.fullClient = "widget-full-1000"
	w.fullSecret = e.CreateClient(&store.Client{ID: w.fullClient, ProductID: w.product.ID})
	w.createClient = "widget-app-2000"
	w.createSecret = e.CreateClient(&store.Client{ID: w.createClient, ProductID: w.product.ID, Scope: auth.ScopeCustomersCreate})
	w.webClient = "widget-web-3000"
	w.webSecret = e.CreateClient(&store.Client{ID: w.webClient, ProductID: w.product.ID, Type: store.ClientWeb,
		RedirectURI: webRedirect, Scope: auth.ScopeCustomersCreate})
	w.otherClient = "gadget-full-4000"
	w.otherSecret = e.CreateClient(&store.Client{ID: w.otherClient, ProductID: w.otherProduct.ID})
	w.userClient = "mine-5000"
	w.userSecret = e.CreateClient(&store.Client{ID: w.userClient, OwnerID: w.owner.ID})

	w.customer = e.CreateCustomer(w.product.ID, customerEmail, customerPass)
	w.otherCustomer = e.CreateCustomer(w.otherProduct.ID, customerEmail, customerPass)

	w.ownerToken = e.UserToken(w.owner)
	w.otherToken = e.UserToken(w.other)
	w.victimToken = e.UserToken(w.owner)
	w.customerToken = e.Issue(auth.Issue{Kind: store.KindCustomer, CustomerID: w.customer.ID, ProductID: w.product.ID,
		ClientID: w.fullClient, Lifetime: auth.DefaultLifetime})
	w.otherCustToken = e.Issue(auth.Issue{Kind: store.KindCustomer, CustomerID: w.otherCustomer.ID, ProductID: w.otherProduct.ID,
		ClientID: w.otherClient, Lifetime: auth.DefaultLifetime})
	w.productToken = e.Issue(auth.Issue{Kind: store.KindProduct, ProductID: w.product.ID, ClientID: w.fullClient,
		Lifetime: auth.DefaultLifetime})
	w.expiredToken = e.Issue(auth.Issue{Kind: store.KindUser, UserID: w.owner.ID, ClientID: "particle", Lifetime: time.Hour})
	w.revokedToken = e.UserToken(w.owner)
	if err := e.Auth.RevokeToken(ctx, w.revokedToken); err != nil {
		t.Fatal(err)
	}

	// An API user of product with a few scopes.
	apiUser := e.CreateUser("bot+0001@"+api.APIUserDomain, "unused-password")
	w.apiUserName = apiUser.Username
	if err := e.Store.AddTeamMember(ctx, &store.TeamMember{ProductID: w.product.ID, Username: apiUser.Username,
		Role: store.RoleDeveloper, Programmatic: true}); err != nil {
		t.Fatal(err)
	}
	w.apiUserToken = e.Issue(auth.Issue{Kind: store.KindUser, UserID: apiUser.ID, ClientID: "api-user", Scope: apiUserScopes})

	e.Clock.Advance(2 * time.Hour)
	return w
}

// worldImage is a seeded world saved once (its database image, auth key
// and clock) for tests that need many identical worlds: copy opens each
// over a fresh Env from the image, which costs a fraction of seeding one.
type worldImage struct {
	w   *world
	img []byte
	now time.Time
}

// saveWorld saves w as it is now. Only its database, auth key and clock
// carry over to copies: fixtures held elsewhere (such as FakeDevices
// values) are the caller's to set again.
func saveWorld(t testing.TB, w *world) *worldImage {
	t.Helper()
	img, err := w.DB.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &worldImage{w: w, img: img, now: w.Clock.Now()}
}

// copy returns a world identical to the saved one over a new in-memory
// Env (opts.Image and opts.SecretKey are set from the image).
func (wi *worldImage) copy(t testing.TB, opts apitest.Options) *world {
	t.Helper()
	opts.Image, opts.SecretKey, opts.InMemory = wi.img, wi.w.SecretKey, true
	w := *wi.w
	w.Env = apitest.New(t, opts)
	w.Clock.Advance(wi.now.Sub(w.Clock.Now()))
	return &w
}

// addDevices stores ownerDeviceID (claimed by owner), customerDeviceID
// (in product, claimed by customer), both online and described, and
// freeDeviceID.
func (w *world) addDevices(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, d := range []struct {
		id, user, customer string
		product            int64
	}{{ownerDeviceID, w.owner.ID, "", 0}, {customerDeviceID, "", w.customer.ID, w.product.ID}} {
		if _, err := w.Store.ProvisionDevice(ctx, d.id, "", nil, d.product); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Store.ClaimDevice(ctx, d.id, d.user, d.customer); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Store.SetDeviceOnline(ctx, d.id, store.DeviceSession{Node: "n1", SessionID: "s-" + d.id,
			IP: "192.0.2.20", PlatformID: w.product.PlatformID}); err != nil {
			t.Fatal(err)
		}
		if err := w.Store.SetDeviceDescribe(ctx, d.id, store.Describe{Parts: store.DescribeApplication,
			Functions: []string{authzFunction}, Variables: map[string]string{authzVariable: "double"}}); err != nil {
			t.Fatal(err)
		}
	}
	w.setDeviceValues()
	if _, err := w.Store.ProvisionDevice(ctx, freeDeviceID, "", nil, 0); err != nil {
		t.Fatal(err)
	}
}

// setDeviceValues sets what the devices of addDevices answer, in the
// Env's FakeDevices (none with NoDevices or Options.Devices).
func (w *world) setDeviceValues() {
	if w.Devices != nil {
		w.Devices.SetVariable(authzVariable, 1.5)
	}
}

// expand replaces the {placeholders} of a path or body with world values.
func (w *world) expand(s string) string {
	return strings.NewReplacer(
		"{p}", w.product.Slug,
		"{pid}", strconv.FormatInt(w.product.ID, 10),
		"{client}", w.fullClient,
		"{uclient}", w.userClient,
		"{cust}", url.PathEscape(customerEmail),
		"{member}", memberName,
		"{victim}", w.victimToken,
		"{owner}", ownerName,
		"{ownerpass}", ownerPass,
	).Replace(s)
}

// bodyReq returns a Req for method and path with body: a JSON object when
// it starts with "{", else form-encoded pairs ("a=b&c=d"); placeholders
// are expanded in both.
func (w *world) bodyReq(method, path, body string) apitest.Req {
	r := apitest.Req{Method: method, Path: w.expand(path)}
	body = w.expand(body)
	switch {
	case strings.HasPrefix(body, "{"):
		r.Body, r.ContentType = body, "application/json"
	case body != "":
		vals, err := url.ParseQuery(body)
		if err != nil {
			panic(err)
		}
		r.Form = vals
	}
	return r
}

// login runs the password grant and returns the response.
func (w *world) login(username, password, clientID, clientSecret string) *apitest.Resp {
	return w.Do(apitest.Req{Method: "POST", Path: "/oauth/token", Form: url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password},
		"client_id": {clientID}, "client_secret": {clientSecret},
	}})
}

// issueCustomer describes a 90-day token of a customer of w.product.
func issueCustomer(w *world, customerID string) auth.Issue {
	return auth.Issue{Kind: store.KindCustomer, CustomerID: customerID, ProductID: w.product.ID,
		ClientID: w.fullClient, Lifetime: auth.DefaultLifetime}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
