package cloud

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

// User is the user object of GET /v1/user; for a customer token only
// Username and NoPassword are filled.
type User struct {
	// Username is the user's e-mail (or the customer's identifier).
	Username string `json:"username"`
	// SubscriptionIDs is always empty in Wick.
	SubscriptionIDs []string `json:"subscription_ids"`
	// AccountInfo holds the user's names.
	AccountInfo AccountInfo `json:"account_info"`
	// MFA says whether two-step authentication is on.
	MFA struct {
		// Enabled is true when logins need a one-time password.
		Enabled bool `json:"enabled"`
	} `json:"mfa"`
	// Memberships is always empty in Wick.
	Memberships []string `json:"memberships"`
	// NoPassword is true for a customer created without a password.
	NoPassword bool `json:"no_password"`
}

// AccountInfo is the account_info object of a user.
type AccountInfo struct {
	// FirstName is the user's first name.
	FirstName string `json:"first_name"`
	// LastName is the user's last name.
	LastName string `json:"last_name"`
	// CompanyName is the user's company.
	CompanyName string `json:"company_name,omitempty"`
	// BusinessAccount marks a business account.
	BusinessAccount bool `json:"business_account"`
}

// GetUser is GET /v1/user: the calling user (or customer).
func (c *Client) GetUser(ctx context.Context) (*User, error) {
	var u User
	if err := c.do(ctx, call{method: "GET", path: "/v1/user"}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Product is the product object.
type Product struct {
	// ID is the product's number.
	ID int64 `json:"id"`
	// PlatformID is the platform of its devices (6 = Photon).
	PlatformID int `json:"platform_id"`
	// Name is the product's name.
	Name string `json:"name"`
	// Slug is the product's URL name, usable wherever an ID is.
	Slug string `json:"slug"`
	// Description is free text.
	Description string `json:"description"`
	// User is the owner's username.
	User string `json:"user"`
	// Groups are the device groups (always empty in Wick).
	Groups []string `json:"groups"`
	// Settings is the settings object, as stored.
	Settings json.RawMessage `json:"settings"`
	// RequiresActivationCodes is Particle's flag; Wick stores it only.
	RequiresActivationCodes bool `json:"requires_activation_codes"`
}

// ListProducts is GET /v1/user/products: the products whose team the
// caller is on.
func (c *Client) ListProducts(ctx context.Context) ([]Product, error) {
	var out struct {
		Products []Product `json:"products"`
	}
	err := c.do(ctx, call{method: "GET", path: "/v1/user/products"}, &out)
	return out.Products, err
}

// NewProduct is the input of CreateProduct.
type NewProduct struct {
	// Name is required; the slug is made from it.
	Name string `json:"name"`
	// PlatformID is required (6 = Photon, 12 = Argon, ...).
	PlatformID int `json:"platform_id"`
	// Description is optional free text.
	Description string `json:"description,omitempty"`
}

// CreateProduct is POST /v1/user/products; the caller owns the new
// product and is on its team.
func (c *Client) CreateProduct(ctx context.Context, p NewProduct) (*Product, error) {
	var out struct {
		Product Product `json:"product"`
	}
	if err := c.do(ctx, call{method: "POST", path: "/v1/user/products",
		json: map[string]NewProduct{"product": p}}, &out); err != nil {
		return nil, err
	}
	return &out.Product, nil
}

// GetProduct is GET /v1/products/{product}, product being an ID or slug.
func (c *Client) GetProduct(ctx context.Context, product string) (*Product, error) {
	var out struct {
		Product Product `json:"product"`
	}
	if err := c.do(ctx, call{method: "GET", path: productPath(product)}, &out); err != nil {
		return nil, err
	}
	return &out.Product, nil
}

// OAuthClient is an OAuth client of a user or a product.
type OAuthClient struct {
	// ID is the client ID.
	ID string `json:"id"`
	// Name is the client's name.
	Name string `json:"name"`
	// Type is "installed" or "web".
	Type string `json:"type"`
	// Secret is shown once, in CreateClient's answer.
	Secret string `json:"secret,omitempty"`
	// RedirectURI is the redirect of a web client.
	RedirectURI string `json:"redirect_uri,omitempty"`
	// Scope limits the client (e.g. "create_customer").
	Scope string `json:"scope,omitempty"`
}

// NewClient is the input of CreateClient.
type NewClient struct {
	// Name is required.
	Name string
	// Type is "installed" (the default) or "web".
	Type string
	// RedirectURI is required for a web client.
	RedirectURI string
	// Scope is optional, e.g. "create_customer".
	Scope string
}

// clientsPath is the clients collection of product, or the user's when
// product is "".
func clientsPath(product string) string {
	if product == "" {
		return "/v1/clients"
	}
	return productPath(product) + "/clients"
}

// CreateClient is POST /v1/products/{product}/clients (or /v1/clients when
// product is ""). The answer holds the secret, which is never shown again.
func (c *Client) CreateClient(ctx context.Context, product string, n NewClient) (*OAuthClient, error) {
	form := url.Values{"name": {n.Name}}
	for k, v := range map[string]string{"type": n.Type, "redirect_uri": n.RedirectURI, "scope": n.Scope} {
		if v != "" {
			form.Set(k, v)
		}
	}
	var out struct {
		Client OAuthClient `json:"client"`
	}
	if err := c.do(ctx, call{method: "POST", path: clientsPath(product), form: form}, &out); err != nil {
		return nil, err
	}
	return &out.Client, nil
}

// ListClients is GET /v1/products/{product}/clients (or /v1/clients when
// product is ""); secrets are not shown.
func (c *Client) ListClients(ctx context.Context, product string) ([]OAuthClient, error) {
	var out struct {
		Clients []OAuthClient `json:"clients"`
	}
	err := c.do(ctx, call{method: "GET", path: clientsPath(product)}, &out)
	return out.Clients, err
}

// DeleteClient is DELETE /v1/products/{product}/clients/{id} (or the
// user's): it revokes the client's tokens and removes it.
func (c *Client) DeleteClient(ctx context.Context, product, id string) error {
	return c.do(ctx, call{method: "DELETE", path: clientsPath(product) + "/" + pathEscape(id)}, nil)
}

// NewCustomer is the input of CreateCustomer.
type NewCustomer struct {
	// Email identifies the customer (it need not be an e-mail address).
	Email string
	// Password is required unless NoPassword is set.
	Password string
	// NoPassword creates a customer that cannot log in by password (its
	// tokens come from the client_credentials grant).
	NoPassword bool
	// ExpiresIn, when not nil, is the lifetime of the first token.
	ExpiresIn *time.Duration
}

// CreateCustomer is POST /v1/products/{product}/customers. With o naming
// a product client, the client's credentials authenticate the call (HTTP
// Basic); with o nil, the client's token (a team member's or product
// token) does. The answer is the customer's first token.
func (c *Client) CreateCustomer(ctx context.Context, product string, n NewCustomer, o *TokenOptions) (*Token, error) {
	form := url.Values{"email": {n.Email}}
	if n.NoPassword {
		form.Set("no_password", "true")
	} else {
		form.Set("password", n.Password)
	}
	if n.ExpiresIn != nil {
		form.Set("expires_in", strconv.FormatInt(int64(*n.ExpiresIn/time.Second), 10))
	}
	cl := call{method: "POST", path: productPath(product) + "/customers", form: form}
	if o != nil {
		cl.basic = [2]string{o.ClientID, o.ClientSecret}
	}
	var t Token
	if err := c.do(ctx, cl, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Customer is one entry of ListCustomers.
type Customer struct {
	// ID is the customer's ID.
	ID string `json:"id"`
	// Username is the customer's e-mail or identifier.
	Username string `json:"username"`
	// Devices is always empty in this list.
	Devices []string `json:"devices"`
}

// Meta is the paging information of product lists.
type Meta struct {
	// TotalPages is the number of pages.
	TotalPages int `json:"total_pages"`
	// Page is this page's number, from 1.
	Page int `json:"page"`
	// PerPage is the page size.
	PerPage int `json:"per_page"`
	// Total is the number of entries of all pages.
	Total int `json:"total"`
}

// Page selects a page of a product list; the zero value is the server's
// default (the first page).
type Page struct {
	// Number is the page, from 1; 0 means 1.
	Number int
	// PerPage is the page size; 0 means the server's default.
	PerPage int
}

// query renders p as query parameters.
func (p Page) query() url.Values {
	q := url.Values{}
	if p.Number > 0 {
		q.Set("page", strconv.Itoa(p.Number))
	}
	if p.PerPage > 0 {
		q.Set("per_page", strconv.Itoa(p.PerPage))
	}
	return q
}

// ListCustomers is GET /v1/products/{product}/customers: one page of the
// product's customers.
func (c *Client) ListCustomers(ctx context.Context, product string, page Page) ([]Customer, Meta, error) {
	var out struct {
		Customers []Customer `json:"customers"`
		Meta      Meta       `json:"meta"`
	}
	err := c.do(ctx, call{method: "GET", path: productPath(product) + "/customers", query: page.query()}, &out)
	return out.Customers, out.Meta, err
}

// customerPath is /v1/products/{product}/customers/{email}.
func customerPath(product, email string) string {
	return productPath(product) + "/customers/" + pathEscape(email)
}

// SetCustomerPassword is PUT /v1/products/{product}/customers/{email}: it
// sets the customer's password (one without a password gets one).
func (c *Client) SetCustomerPassword(ctx context.Context, product, email, password string) error {
	return c.do(ctx, call{method: "PUT", path: customerPath(product, email),
		form: url.Values{"password": {password}}}, nil)
}

// DeleteCustomer is DELETE /v1/products/{product}/customers/{email}: it
// revokes the customer's tokens and removes it.
func (c *Client) DeleteCustomer(ctx context.Context, product, email string) error {
	return c.do(ctx, call{method: "DELETE", path: customerPath(product, email)}, nil)
}

// SignUp is POST /v1/users: it creates a user account, when the server
// allows sign-up. Refusals use the {"ok":false,"errors":[...]} shape
// (Error.Errors).
func (c *Client) SignUp(ctx context.Context, username, password string) error {
	return c.do(ctx, call{method: "POST", path: "/v1/users", noAuth: true,
		form: url.Values{"username": {username}, "password": {password}}}, nil)
}

// ClientUpdate is the input of UpdateClient: the fields to change; nil
// leaves a field as it is.
type ClientUpdate struct {
	// Name is the new name.
	Name *string
	// Scope is the new scope; "none" clears it.
	Scope *string
	// RedirectURI is the new redirect of a web client.
	RedirectURI *string
}

// UpdateClient is PUT /v1/products/{product}/clients/{id} (or the user's
// when product is "").
func (c *Client) UpdateClient(ctx context.Context, product, id string, u ClientUpdate) (*OAuthClient, error) {
	form := url.Values{}
	for k, v := range map[string]*string{"name": u.Name, "scope": u.Scope, "redirect_uri": u.RedirectURI} {
		if v != nil {
			form.Set(k, *v)
		}
	}
	var out struct {
		Client OAuthClient `json:"client"`
	}
	if err := c.do(ctx, call{method: "PUT", path: clientsPath(product) + "/" + pathEscape(id), form: form}, &out); err != nil {
		return nil, err
	}
	return &out.Client, nil
}
