package auth

import (
	"slices"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
)

// scopeWords says in plain words what each scope a browser sign-in may ask
// for lets an application do; the consent page shows these sentences
// (docs/authentication.md, Scopes of the browser sign-in). The narrow
// scopes are Particle's API-user scopes, which the API checks route by
// route.
var scopeWords = map[string]string{
	ScopeFull:               "Everything your account can do: devices, products, webhooks, tokens and settings",
	"clients:list":          "See the OAuth clients of your products",
	"clients:create":        "Create OAuth clients for your products",
	"clients:update":        "Change the OAuth clients of your products",
	"clients:remove":        "Delete the OAuth clients of your products",
	"customers:list":        "See the customers of your products",
	"customers:create":      "Create customers of your products",
	"customers:update":      "Change the customers of your products",
	"customers:remove":      "Delete the customers of your products",
	"products:list":         "See the list of your products",
	"products:get":          "See the details of your products",
	"teams.users:list":      "See who is on your products' teams",
	"teams.users:invite":    "Invite people to your products' teams",
	"teams.users:remove":    "Remove people from your products' teams",
	"teams.users:update":    "Change the roles of your products' team members",
	"organization:get":      "See your organizations",
	"devices:list":          "See the devices of your products",
	"devices:get":           "See the details of your products' devices",
	"devices:update":        "Rename your products' devices and change their settings",
	"devices:remove":        "Remove devices from your products",
	"devices:import":        "Add devices to your products",
	"devices:ping":          "Ping your products' devices",
	"devices.function:call": "Call functions on your products' devices",
	"devices.variable:get":  "Read variables of your products' devices",
	"integrations:list":     "See your products' webhooks and integrations",
	"integrations:get":      "See the details and deliveries of your products' webhooks",
	"integrations:create":   "Create webhooks and integrations for your products",
	"integrations:update":   "Change your products' webhooks and integrations",
	"integrations:remove":   "Delete your products' webhooks and integrations",
	"integrations:test":     "Send test events to your products' webhooks",
}

// customerFullWords is the full scope as a product's customer grants it:
// a customer's token reaches only the customer's own devices.
const customerFullWords = "Your devices: see them, claim new ones, call their functions, read their variables and events"

// ScopeNames returns every scope a browser sign-in may ask for, sorted.
func ScopeNames() []string {
	out := make([]string, 0, len(scopeWords))
	for k := range scopeWords {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ScopeWords returns the plain-words description of scope for the kind of
// account granting it (store.KindUser or store.KindCustomer), or scope
// itself when unknown.
func ScopeWords(scope, kind string) string {
	if scope == ScopeFull && kind == store.KindCustomer {
		return customerFullWords
	}
	if w, ok := scopeWords[scope]; ok {
		return w
	}
	return scope
}

// parseScopeSet reads a space-separated scope parameter into a sorted set
// without duplicates: empty means full access, and full access with
// narrower scopes is full access alone. unknown is the first scope that is
// not known, "" if none.
func parseScopeSet(raw string) (set []string, unknown string) {
	for _, sc := range strings.Fields(raw) {
		if _, ok := scopeWords[sc]; !ok {
			return nil, sc
		}
		if !slices.Contains(set, sc) {
			set = append(set, sc)
		}
	}
	if len(set) == 0 || slices.Contains(set, ScopeFull) {
		return []string{ScopeFull}, ""
	}
	slices.Sort(set)
	return set, ""
}

// scopeCovers reports whether a granted scope set covers every scope of
// want: full access covers everything.
func scopeCovers(granted, want []string) bool {
	if slices.Contains(granted, ScopeFull) {
		return true
	}
	for _, sc := range want {
		if !slices.Contains(granted, sc) {
			return false
		}
	}
	return true
}

// scopeUnion returns the sorted union of two scope sets; full access
// absorbs the rest.
func scopeUnion(a, b []string) []string {
	out := slices.Clone(a)
	for _, sc := range b {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if slices.Contains(out, ScopeFull) {
		return []string{ScopeFull}
	}
	slices.Sort(out)
	return out
}
