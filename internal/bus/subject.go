package bus

import (
	"strconv"
	"strings"
)

// Subject layout (see docs/bus.md for the full table). P is Config.SubjectPrefix.
//
//	P.evt.<vis>.<product>.<user>.<customer>.<device>   events as accepted (captured by the JetStream stream)
//	P.live.<vis>.<product>.<user>.<customer>.<device>  events as delivered, each with its ID
//	P.presence.<device>                                device online/offline
//	P.dev.<device>                                     device call requests (request/reply)
//
// <vis> is "pub" or "priv"; <product> is the decimal product ID ("0" for none);
// the other tokens are escaped with EscapeToken.
const (
	kindEvt      = "evt"
	kindLive     = "live"
	kindPresence = "presence"
	kindDevice   = "dev"

	visPublic  = "pub"
	visPrivate = "priv"
)

// subjects builds the subjects of one bus under its prefix. It is immutable.
type subjects struct {
	prefix string // e.g. "wick"
	evt    string // "wick.evt."
	live   string // "wick.live."
	pres   string // "wick.presence."
	dev    string // "wick.dev."
}

func newSubjects(prefix string) subjects {
	return subjects{
		prefix: prefix,
		evt:    prefix + "." + kindEvt + ".",
		live:   prefix + "." + kindLive + ".",
		pres:   prefix + "." + kindPresence + ".",
		dev:    prefix + "." + kindDevice + ".",
	}
}

// meta is the routing part of an event: the escaped subject tokens after
// the kind token. It is what a filter matches on without decoding the payload.
type meta struct {
	public   bool
	product  string
	user     string
	customer string
	device   string
}

func metaOf(e *Event) meta {
	return meta{
		public:   e.Public,
		product:  strconv.FormatInt(e.ProductID, 10),
		user:     EscapeToken(e.UserID),
		customer: EscapeToken(e.CustomerID),
		device:   EscapeToken(e.DeviceID),
	}
}

// tail renders the five routing tokens.
func (m meta) tail() string {
	vis := visPrivate
	if m.public {
		vis = visPublic
	}
	return vis + "." + m.product + "." + m.user + "." + m.customer + "." + m.device
}

// parseTail splits "<vis>.<product>.<user>.<customer>.<device>" without allocating.
func parseTail(s string) (meta, bool) {
	var m meta
	var vis string
	var ok bool
	if vis, s, ok = strings.Cut(s, "."); !ok {
		return m, false
	}
	switch vis {
	case visPublic:
		m.public = true
	case visPrivate:
	default:
		return m, false
	}
	if m.product, s, ok = strings.Cut(s, "."); !ok {
		return m, false
	}
	if m.user, s, ok = strings.Cut(s, "."); !ok {
		return m, false
	}
	if m.customer, m.device, ok = strings.Cut(s, "."); !ok {
		return m, false
	}
	if m.product == "" || m.user == "" || m.customer == "" || m.device == "" || strings.Contains(m.device, ".") {
		return m, false
	}
	return m, true
}

// emptyToken stands for an empty value. EscapeToken never produces it for
// a non-empty input, because a literal '~' is itself escaped.
const emptyToken = "~"

// EscapeToken turns any string into one valid NATS subject token: letters,
// digits, '_' and '-' pass through, every other byte becomes "~" followed by
// two lower-case hex digits, and the empty string becomes "~". The mapping is
// injective, so equal tokens mean equal inputs. Device, user and customer IDs
// (24 hex digits) pass through unchanged and without allocating.
func EscapeToken(s string) string {
	if s == "" {
		return emptyToken
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !tokenSafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenSafe(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '~', hex[c>>4], hex[c&0xf])
	}
	return string(b)
}

// UnescapeToken reverses EscapeToken. It reports false for a string that
// EscapeToken cannot have produced.
func UnescapeToken(t string) (string, bool) {
	if t == emptyToken {
		return "", true
	}
	if t == "" {
		return "", false
	}
	if !strings.Contains(t, "~") {
		for i := 0; i < len(t); i++ {
			if !tokenSafe(t[i]) {
				return "", false
			}
		}
		return t, true
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		if tokenSafe(c) {
			b = append(b, c)
			continue
		}
		if c != '~' || i+2 >= len(t) {
			return "", false
		}
		hi, ok1 := unhex(t[i+1])
		lo, ok2 := unhex(t[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		v := hi<<4 | lo
		if tokenSafe(v) {
			return "", false // not canonical: EscapeToken would not escape it
		}
		b = append(b, v)
		i += 2
	}
	return string(b), true
}

func tokenSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// unhex accepts only lower-case hex digits, the form EscapeToken writes.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
