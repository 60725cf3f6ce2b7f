package cloud_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/sdk/cloud"
)

// login returns a client acting as the owner, and the owner's token.
func login(t *testing.T, w *wick) (*cloud.Client, *cloud.Token) {
	t.Helper()
	tok, err := cloud.New(w.api, "").Login(within(t, 10*time.Second), ownerEmail, ownerPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cloud.New(w.api, tok.AccessToken), tok
}

func TestAuthFlows(t *testing.T) {
	w := startWick(t)
	ctx := within(t, 30*time.Second)
	anon := cloud.New(w.api, "")
	tok, err := anon.Login(ctx, ownerEmail, ownerPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn <= 0 || tok.TokenType != "bearer" {
		t.Fatalf("login token = %+v; want an expiring bearer token with a refresh token", tok)
	}
	owner := anon.WithToken(tok.AccessToken)
	u, err := owner.GetUser(ctx)
	if err != nil || u.Username != ownerEmail {
		t.Fatalf("GetUser = %+v, %v; want %s", u, err, ownerEmail)
	}
	cur, err := owner.GetCurrentToken(ctx)
	if err != nil || cur.ClientID != cloud.DefaultClientID {
		t.Fatalf("GetCurrentToken = %+v, %v", cur, err)
	}

	// Refresh: a new pair; the used refresh token is spent.
	tok2, err := anon.Refresh(ctx, tok.RefreshToken, nil)
	if err != nil || tok2.AccessToken == "" || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("Refresh = %+v, %v", tok2, err)
	}
	_, err = anon.Refresh(ctx, tok.RefreshToken, nil)
	if e := (*cloud.Error)(nil); !errors.As(err, &e) || e.StatusCode != 400 || e.Code != "invalid_grant" {
		t.Fatalf("second Refresh: %v; want 400 invalid_grant", err)
	}

	// A token that never expires has no refresh token.
	never := time.Duration(0)
	tok3, err := anon.Login(ctx, ownerEmail, ownerPassword, &cloud.TokenOptions{ExpiresIn: &never})
	if err != nil || tok3.ExpiresIn != 0 || tok3.RefreshToken != "" {
		t.Fatalf("Login(expires_in=0) = %+v, %v", tok3, err)
	}

	list, err := anon.ListTokens(ctx, ownerEmail, ownerPassword)
	if err != nil || len(list) < 3 {
		t.Fatalf("ListTokens = %v, %v; want the 3 tokens", list, err)
	}
	if _, err := anon.ListTokens(ctx, ownerEmail, "wrong-password"); !cloud.IsUnauthorized(err) {
		t.Errorf("ListTokens with a wrong password: %v; want 401", err)
	}

	// DeleteToken revokes tok3; Logout revokes the calling token.
	if err := anon.DeleteToken(ctx, tok3.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WithToken(tok3.AccessToken).GetUser(ctx); !cloud.IsUnauthorized(err) {
		t.Errorf("GetUser after DeleteToken: %v; want 401", err)
	}
	second := anon.WithToken(tok2.AccessToken)
	if err := second.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := second.GetUser(ctx); !cloud.IsUnauthorized(err) {
		t.Errorf("GetUser after Logout: %v; want 401", err)
	}

	// A TokenSource is asked for each request.
	calls := 0
	src := &cloud.Client{BaseURL: w.api, TokenSource: func(context.Context) (string, error) {
		calls++
		return tok.AccessToken, nil
	}}
	if _, err := src.GetUser(ctx); err != nil || calls != 1 {
		t.Errorf("GetUser with a TokenSource: %v, %d calls", err, calls)
	}

	// Do reaches routes without a method of their own.
	var orgs struct {
		Organizations []any `json:"organizations"`
	}
	if err := owner.Do(ctx, "GET", "/v1/orgs", nil, &orgs); err != nil || orgs.Organizations == nil {
		t.Errorf("Do(GET /v1/orgs) = %+v, %v", orgs, err)
	}
	if err := owner.Do(ctx, "PUT", "/v1/user/mfa-disable", url.Values{"current_password": {"x"}}, nil); !cloud.IsBadRequest(err) {
		t.Errorf("Do(PUT /v1/user/mfa-disable) without MFA: %v; want 400", err)
	}

	// DeleteAllTokens revokes every token of the caller, its own included.
	if err := owner.DeleteAllTokens(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.GetUser(ctx); !cloud.IsUnauthorized(err) {
		t.Errorf("GetUser after DeleteAllTokens: %v; want 401", err)
	}
	if list, err := anon.ListTokens(ctx, ownerEmail, ownerPassword); err != nil || len(list) != 0 {
		t.Errorf("ListTokens after DeleteAllTokens = %v, %v; want none", list, err)
	}
}

func TestErrorShapes(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	tests := []struct {
		name    string
		call    func() error
		status  int
		code    string // the "error" field
		is      func(error) bool
		hasDesc bool
	}{
		// Particle answers 403 for a device the caller cannot see, with an
		// info hint.
		{"unknown device", func() error { _, err := owner.GetDevice(ctx, "nonexistent"); return err },
			403, "Permission Denied", cloud.IsForbidden, false},
		{"unknown product", func() error { _, err := owner.GetProduct(ctx, "no-such-product"); return err },
			404, "Product not found", cloud.IsNotFound, false},
		{"no token", func() error { _, err := cloud.New(w.api, "").GetUser(ctx); return err },
			400, "invalid_request", cloud.IsBadRequest, true},
		{"bad token", func() error { _, err := owner.WithToken("0123456789abcdef").ListDevices(ctx); return err },
			401, "invalid_token", cloud.IsUnauthorized, true},
		{"wrong password", func() error {
			_, err := cloud.New(w.api, "").Login(ctx, ownerEmail, "not-the-password", nil)
			return err
		}, 400, "invalid_grant", cloud.IsBadRequest, true},
		{"product without name", func() error { _, err := owner.CreateProduct(ctx, cloud.NewProduct{PlatformID: 6}); return err },
			400, "", cloud.IsBadRequest, false},
		{"unknown webhook", func() error { _, err := owner.GetWebhook(ctx, "", "0123456789abcdef01234567"); return err },
			404, "", cloud.IsNotFound, false},
		{"sign-up without e-mail (list shape)", func() error { return cloud.New(w.api, "").SignUp(ctx, "not-an-email", "a-long-password") },
			400, "", cloud.IsBadRequest, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *cloud.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v; want *cloud.Error", err)
			}
			if e.StatusCode != tt.status || !tt.is(err) || cloud.StatusCode(err) != tt.status {
				t.Errorf("status = %d; want %d", e.StatusCode, tt.status)
			}
			if tt.code != "" && e.Code != tt.code {
				t.Errorf("error = %q; want %q (body %s)", e.Code, tt.code, e.Body)
			}
			if e.Code == "" && len(e.Errors) == 0 {
				t.Errorf("no error field in %s", e.Body)
			}
			if strings.Contains(tt.name, "list shape") && (len(e.Errors) != 1 || e.Code != "") {
				t.Errorf("errors = %q, error = %q; want one entry in the list", e.Errors, e.Code)
			}
			if tt.status == 403 && e.Info == "" {
				t.Errorf("no info in %s", e.Body)
			}
			if tt.hasDesc && e.Description == "" {
				t.Errorf("no error_description in %s", e.Body)
			}
			if !strings.HasPrefix(e.Error(), fmt.Sprintf("cloud: %d ", tt.status)) {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
}

func TestProductsClientsCustomers(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	prod, err := owner.CreateProduct(ctx, cloud.NewProduct{Name: "SDK Lamp", PlatformID: 6})
	if err != nil {
		t.Fatal(err)
	}
	if prod.ID == 0 || prod.Slug == "" || prod.PlatformID != 6 || prod.Name != "SDK Lamp" {
		t.Fatalf("CreateProduct = %+v", prod)
	}
	list, err := owner.ListProducts(ctx)
	if err != nil || !slices.ContainsFunc(list, func(p cloud.Product) bool { return p.ID == prod.ID }) {
		t.Fatalf("ListProducts = %v, %v; want %d", list, err, prod.ID)
	}
	got, err := owner.GetProduct(ctx, prod.Slug)
	if err != nil || got.ID != prod.ID {
		t.Fatalf("GetProduct(%s) = %+v, %v", prod.Slug, got, err)
	}

	cl, err := owner.CreateClient(ctx, prod.Slug, cloud.NewClient{Name: "sdk backend"})
	if err != nil || cl.ID == "" || cl.Secret == "" || cl.Type != "installed" {
		t.Fatalf("CreateClient = %+v, %v", cl, err)
	}
	newName := "sdk backend 2"
	if up, err := owner.UpdateClient(ctx, prod.Slug, cl.ID, cloud.ClientUpdate{Name: &newName}); err != nil || up.Name != newName || up.Secret != "" {
		t.Fatalf("UpdateClient = %+v, %v", up, err)
	}
	clients, err := owner.ListClients(ctx, prod.Slug)
	if err != nil || len(clients) != 1 || clients[0].ID != cl.ID || clients[0].Secret != "" {
		t.Fatalf("ListClients = %+v, %v; want %s without its secret", clients, err, cl.ID)
	}
	creds := &cloud.TokenOptions{ClientID: cl.ID, ClientSecret: cl.Secret}
	anon := cloud.New(w.api, "")

	// A customer with a password, created with the client's credentials,
	// logs in through the same client.
	ctok, err := anon.CreateCustomer(ctx, prod.Slug, cloud.NewCustomer{Email: "alice@example.com", Password: "alice-password-1"}, creds)
	if err != nil || ctok.AccessToken == "" {
		t.Fatalf("CreateCustomer(password) = %+v, %v", ctok, err)
	}
	ltok, err := anon.Login(ctx, "alice@example.com", "alice-password-1", creds)
	if err != nil {
		t.Fatalf("customer Login: %v", err)
	}
	if u, err := anon.WithToken(ltok.AccessToken).GetUser(ctx); err != nil || u.Username != "alice@example.com" {
		t.Fatalf("customer GetUser = %+v, %v", u, err)
	}

	// A product token creates a customer without a password; the client
	// then gets that customer's tokens by client_credentials.
	ptok, err := anon.ClientCredentials(ctx, "", creds)
	if err != nil || ptok.AccessToken == "" {
		t.Fatalf("ClientCredentials = %+v, %v", ptok, err)
	}
	if _, err := anon.WithToken(ptok.AccessToken).CreateCustomer(ctx, prod.Slug,
		cloud.NewCustomer{Email: "bob@example.com", NoPassword: true}, nil); err != nil {
		t.Fatalf("CreateCustomer(no_password): %v", err)
	}
	btok, err := anon.ClientCredentials(ctx, "customer=bob@example.com", creds)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := anon.WithToken(btok.AccessToken).GetUser(ctx)
	if err != nil || bob.Username != "bob@example.com" || !bob.NoPassword {
		t.Fatalf("bob GetUser = %+v, %v", bob, err)
	}
	if _, err := anon.CreateCustomer(ctx, prod.Slug, cloud.NewCustomer{Email: "bob@example.com", NoPassword: true}, creds); err == nil {
		t.Errorf("second CreateCustomer(bob) succeeded")
	}

	customers, meta, err := owner.ListCustomers(ctx, prod.Slug, cloud.Page{})
	if err != nil || len(customers) != 2 || meta.Total != 2 || meta.Page != 1 {
		t.Fatalf("ListCustomers = %+v, %+v, %v; want alice and bob", customers, meta, err)
	}
	page2, meta, err := owner.ListCustomers(ctx, prod.Slug, cloud.Page{Number: 2, PerPage: 1})
	if err != nil || len(page2) != 1 || meta.TotalPages != 2 || meta.PerPage != 1 {
		t.Fatalf("ListCustomers(page 2 of 1) = %+v, %+v, %v", page2, meta, err)
	}

	// bob gets a password and logs in with it; then he is deleted.
	if err := owner.SetCustomerPassword(ctx, prod.Slug, "bob@example.com", "bob-password-22"); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Login(ctx, "bob@example.com", "bob-password-22", creds); err != nil {
		t.Fatalf("bob Login after SetCustomerPassword: %v", err)
	}
	if err := owner.DeleteCustomer(ctx, prod.Slug, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WithToken(btok.AccessToken).GetUser(ctx); !cloud.IsUnauthorized(err) {
		t.Errorf("bob's token after DeleteCustomer: %v; want 401", err)
	}
	if err := owner.DeleteCustomer(ctx, prod.Slug, "bob@example.com"); !cloud.IsNotFound(err) {
		t.Errorf("second DeleteCustomer: %v; want 404", err)
	}

	if err := owner.DeleteClient(ctx, prod.Slug, cl.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.ClientCredentials(ctx, "", creds); err == nil {
		t.Errorf("ClientCredentials after DeleteClient succeeded")
	}
	if _, err := anon.WithToken(ptok.AccessToken).GetProduct(ctx, prod.Slug); !cloud.IsUnauthorized(err) {
		t.Errorf("product token after DeleteClient: %v; want 401", err)
	}
}

func TestSignUpAndProvision(t *testing.T) {
	w := startWick(t)
	ctx := within(t, 30*time.Second)
	anon := cloud.New(w.api, "")
	if err := anon.SignUp(ctx, "new@example.com", "a-long-password"); err != nil {
		t.Fatal(err)
	}
	err := anon.SignUp(ctx, "new@example.com", "a-long-password")
	if e := (*cloud.Error)(nil); !errors.As(err, &e) || len(e.Errors) != 1 {
		t.Fatalf("second SignUp: %v; want one error in the list", err)
	}
	tok, err := anon.Login(ctx, "new@example.com", "a-long-password", nil)
	if err != nil {
		t.Fatal(err)
	}
	user := anon.WithToken(tok.AccessToken)

	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	const id = "c20000000000000000000001"
	if err := user.ProvisionDevice(ctx, id, pemKey, ""); err != nil {
		t.Fatal(err)
	}
	d, err := user.GetDevice(ctx, id)
	if err != nil || d.Online || d.Owner == nil || *d.Owner != "new@example.com" {
		t.Fatalf("provisioned device = %+v, %v; want it offline and owned", d, err)
	}
	if err := user.ProvisionDevice(ctx, id, []byte("not a key"), ""); !cloud.IsBadRequest(err) {
		t.Errorf("ProvisionDevice with garbage: %v; want 400", err)
	}
	// A Gen 3 device's P-256 key goes as algorithm=ecc, read from the key.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	const ecID = "c20000000000000000000002"
	if err := user.ProvisionDevice(ctx, ecID, ecPEM, ""); err != nil {
		t.Fatalf("ProvisionDevice with a P-256 key: %v", err)
	}
	if d, err := user.GetDevice(ctx, ecID); err != nil || d.Owner == nil || *d.Owner != "new@example.com" {
		t.Fatalf("P-256 device = %+v, %v; want it owned", d, err)
	}
	// An algorithm the server does not know is refused with its message.
	err = user.ProvisionDeviceWith(ctx, ecID, ecPEM, cloud.ProvisionOptions{Algorithm: "dsa"})
	if e := (*cloud.Error)(nil); !errors.As(err, &e) || e.StatusCode != 400 || !strings.Contains(e.Error(), "algorithm") {
		t.Errorf("ProvisionDeviceWith(dsa): %v; want 400 naming the algorithm", err)
	}
}

func TestTeamAndAPIUsers(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	prod, err := owner.CreateProduct(ctx, cloud.NewProduct{Name: "SDK Team", PlatformID: 6})
	if err != nil {
		t.Fatal(err)
	}
	api, err := owner.CreateAPIUser(ctx, prod.Slug, "dashboard", []string{"devices:list"})
	if err != nil || api.Username == "" || api.Token == "" {
		t.Fatalf("CreateAPIUser = %+v, %v", api, err)
	}
	scoped := owner.WithToken(api.Token)
	if _, err := scoped.ListProductDevices(ctx, prod.Slug, cloud.Page{}); err != nil {
		t.Errorf("API user within its scope: %v", err)
	}
	// Particle answers 400 "unauthorized" outside an API user's scopes.
	_, _, err = scoped.ListCustomers(ctx, prod.Slug, cloud.Page{})
	if e := (*cloud.Error)(nil); !errors.As(err, &e) || e.StatusCode != 400 || e.Code != "unauthorized" {
		t.Errorf("API user outside its scope: %v; want 400 unauthorized", err)
	}
	if err := owner.InviteTeamMember(ctx, prod.Slug, "dev@example.com", "Developer"); err != nil {
		t.Fatal(err)
	}
	team, err := owner.ListTeam(ctx, prod.Slug)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, m := range team {
		roles[m.Username] = m.Role.Name
		if m.Username == api.Username && !m.IsProgrammatic {
			t.Errorf("API user not marked programmatic: %+v", m)
		}
	}
	if _, ok := roles[ownerEmail]; !ok || roles[api.Username] == "" {
		t.Errorf("team = %+v; want the owner and the API user", team)
	}
	if err := owner.RemoveTeamMember(ctx, prod.Slug, api.Username); err != nil {
		t.Fatal(err)
	}
	if _, err := scoped.ListProductDevices(ctx, prod.Slug, cloud.Page{}); err == nil {
		t.Errorf("removed API user's token still works")
	}
}
