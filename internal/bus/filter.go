package bus

import (
	"strconv"
	"strings"
)

// Filter selects events. Every non-zero selector must match (they are
// ANDed); a zero Filter selects every event. NamePrefix is a case-sensitive
// prefix of the event name and may contain '/' and '.'.
type Filter struct {
	// UserID selects events owned by this user (Event.UserID).
	UserID string
	// CustomerID selects events of devices owned by this customer.
	CustomerID string
	// ProductID selects events of this product's devices (0 = any).
	ProductID int64
	// DeviceID selects events of one device (Event.DeviceID, the coreid).
	DeviceID string
	// PublicOnly selects public events only.
	PublicOnly bool
	// AlsoPublic additionally selects every public event of any owner, so
	// that the selection is "(selectors) OR public"; GET /v1/events/:prefix
	// uses it with UserID. NamePrefix still applies to both.
	AlsoPublic bool
	// NamePrefix selects events whose name starts with it ("" = all).
	NamePrefix string
}

// matcher is a compiled Filter: escaped tokens ("" = any) compared with an
// event's routing tokens.
type matcher struct {
	publicOnly bool
	alsoPublic bool
	product    string
	user       string
	customer   string
	device     string
	prefix     string
}

func compile(f Filter) matcher {
	m := matcher{publicOnly: f.PublicOnly, alsoPublic: f.AlsoPublic, prefix: f.NamePrefix}
	if f.ProductID != 0 {
		m.product = strconv.FormatInt(f.ProductID, 10)
	}
	if f.UserID != "" {
		m.user = EscapeToken(f.UserID)
	}
	if f.CustomerID != "" {
		m.customer = EscapeToken(f.CustomerID)
	}
	if f.DeviceID != "" {
		m.device = EscapeToken(f.DeviceID)
	}
	return m
}

// matchMeta reports whether the routing tokens are selected (the name
// prefix is checked separately, after decoding).
func (m *matcher) matchMeta(t *meta) bool {
	sel := (!m.publicOnly || t.public) &&
		(m.product == "" || m.product == t.product) &&
		(m.user == "" || m.user == t.user) &&
		(m.customer == "" || m.customer == t.customer) &&
		(m.device == "" || m.device == t.device)
	return sel || (m.alsoPublic && t.public)
}

func (m *matcher) matchName(name string) bool {
	return strings.HasPrefix(name, m.prefix)
}

// subject returns the narrowest NATS subject (under base, "P.live." or
// "P.evt.") that covers every event the matcher can select.
func (m *matcher) subject(base string) string {
	if m.alsoPublic {
		return base + ">"
	}
	vis := "*"
	if m.publicOnly {
		vis = visPublic
	}
	return base + vis + "." + orStar(m.product) + "." + orStar(m.user) + "." + orStar(m.customer) + "." + orStar(m.device)
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
