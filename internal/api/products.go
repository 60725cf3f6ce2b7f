package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
)

var (
	errProductName     = errorf(http.StatusBadRequest, "name is required")
	errProductPlatform = errorf(http.StatusBadRequest, "platform_id is required and must be a positive integer")
	errProductSettings = errorf(http.StatusBadRequest, "settings must be an object")
)

// productJSON is the product object of docs/particle-api.md#products.
type productJSON struct {
	ID                      int64           `json:"id"`
	PlatformID              int             `json:"platform_id"`
	Name                    string          `json:"name"`
	Slug                    string          `json:"slug"`
	Description             string          `json:"description"`
	SubscriptionID          *int64          `json:"subscription_id"`
	MBLimit                 *int64          `json:"mb_limit"`
	User                    string          `json:"user"`
	Org                     *string         `json:"org"`
	Groups                  []string        `json:"groups"`
	Settings                json.RawMessage `json:"settings"`
	RequiresActivationCodes bool            `json:"requires_activation_codes"`
}

// defaultSettings are the product settings keys present unless the
// product stored its own.
var defaultSettings = map[string]json.RawMessage{
	"location":          json.RawMessage(`{}`),
	"known_application": json.RawMessage(`{"opt_in":true}`),
	"quarantine":        json.RawMessage(`false`),
}

// productView renders p; owners caches owner usernames by user ID.
func (s *server) productView(rq *request, p *store.Product, owners map[string]string) (productJSON, error) {
	owner, found := owners[p.OwnerID]
	if !found {
		u, err := s.store.UserByID(rq.ctx, p.OwnerID)
		switch {
		case err == nil:
			owner = u.Username
		case !errors.Is(err, store.ErrNotFound):
			return productJSON{}, err
		}
		owners[p.OwnerID] = owner
	}
	settings := map[string]json.RawMessage{}
	for k, v := range defaultSettings {
		settings[k] = v
	}
	if len(p.Settings) > 0 {
		var stored map[string]json.RawMessage
		if err := json.Unmarshal(p.Settings, &stored); err == nil {
			for k, v := range stored {
				settings[k] = v
			}
		}
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return productJSON{}, err
	}
	return productJSON{
		ID: p.ID, PlatformID: p.PlatformID, Name: p.Name, Slug: p.Slug, Description: p.Description,
		User: owner, Groups: []string{}, Settings: raw,
	}, nil
}

// handleListProducts is GET /v1/user/products and GET /v1/products: the
// products whose team lists the caller.
func (s *server) handleListProducts(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	list, err := s.store.ProductsForMember(rq.ctx, u.Username)
	if err != nil {
		return err
	}
	owners := map[string]string{}
	out := make([]productJSON, 0, len(list))
	for i := range list {
		v, err := s.productView(rq, &list[i], owners)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"products": out})
}

// handleGetProduct is GET /v1/products/{p}.
func (s *server) handleGetProduct(rq *request) error {
	v, err := s.productView(rq, rq.product, map[string]string{})
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"product": v})
}

// handleCreateProduct is POST /v1/user/products. It accepts
// {"product":{...}} and the same fields flat. The slug comes from the
// name, with "-2", "-3"... appended while taken.
func (s *server) handleCreateProduct(rq *request) error {
	u, err := s.currentUser(rq)
	if err != nil {
		return err
	}
	p := rq.params
	if obj := p.object("product"); obj != nil {
		p = params(obj)
	}
	name := strings.TrimSpace(p.str("name"))
	if name == "" {
		return errProductName
	}
	platform, found, err := p.integer("platform_id")
	if err != nil || !found || platform <= 0 || platform > 1<<31-1 {
		return errProductPlatform
	}
	settings := []byte("{}")
	if p.has("settings") {
		obj := p.object("settings")
		if obj == nil {
			return errProductSettings
		}
		if settings, err = json.Marshal(obj); err != nil {
			return errProductSettings
		}
	}
	if err := s.checkProductLimit(rq, u); err != nil {
		return err
	}
	prod := &store.Product{
		Name:        name,
		Description: p.str("description"),
		PlatformID:  int(platform),
		OwnerID:     u.ID,
		Settings:    settings,
	}
	base := slugify(name, "product")
	if isDigits(base) {
		base = "product-" + base // an all-digit {p} is read as an ID
	}
	for n := 1; ; n++ {
		prod.Slug = base
		if n > 1 {
			prod.Slug = base + "-" + strconv.Itoa(n)
		}
		if n > 20 {
			prod.Slug = base + "-" + randomDigits(6)
		}
		err = s.store.CreateProduct(rq.ctx, prod, u.Username)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || n > 40 {
			return fmt.Errorf("api: create product: %w", err)
		}
	}
	v, err := s.productView(rq, prod, map[string]string{u.ID: u.Username})
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"product": v})
}

// checkProductLimit refuses a new product when u already owns
// Config.MaxProductsPerUser of them (docs/webhooks.md, Limits): each
// product brings its own webhooks, so this bounds one account's hooks.
func (s *server) checkProductLimit(rq *request, u *store.User) error {
	list, err := s.store.ProductsForMember(rq.ctx, u.Username)
	if err != nil {
		return err
	}
	owned := 0
	for i := range list {
		if list[i].OwnerID == u.ID {
			owned++
		}
	}
	if owned >= s.cfg.MaxProductsPerUser {
		return errorf(http.StatusBadRequest, fmt.Sprintf("Too many products: the limit is %d per user", s.cfg.MaxProductsPerUser))
	}
	return nil
}
