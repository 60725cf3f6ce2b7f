package template

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf16"
)

// renderer is the state of one rendering.
type renderer struct {
	buf   []byte
	limit int // maximum len(buf); < 0 for none
	steps int
	stack []any
	err   error // ErrOutputLimit or ErrWorkLimit once rendering stops
}

// render renders nodes until the end or until r.err is set.
func (r *renderer) render(nodes []node) {
	for i := range nodes {
		if r.err != nil {
			return
		}
		n := &nodes[i]
		if n.kind == nodeText {
			r.write(n.text)
			continue
		}
		if r.steps++; r.steps > MaxSteps {
			r.err = ErrWorkLimit
			return
		}
		v := r.lookup(&n.name)
		switch n.kind {
		case nodeEscaped, nodeRaw:
			r.value(v, n.kind == nodeEscaped)
		case nodeSection:
			r.section(n, v)
		case nodeInverted:
			if !truthy(v) {
				r.render(n.nodes)
			}
		}
	}
}

// section renders a {{#x}} section for value v: once per array element,
// once with an object or a truthy scalar pushed, once as is for true.
func (r *renderer) section(n *node, v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if r.steps++; r.steps > MaxSteps {
				r.err = ErrWorkLimit
			}
			if r.err != nil {
				return
			}
			r.stack = append(r.stack, e)
			r.render(n.nodes)
			r.stack = r.stack[:len(r.stack)-1]
		}
	case bool:
		if x {
			r.render(n.nodes)
		}
	default:
		if truthy(v) {
			r.stack = append(r.stack, v)
			r.render(n.nodes)
			r.stack = r.stack[:len(r.stack)-1]
		}
	}
}

// lookup resolves a name: "." is the innermost context; otherwise the
// first key is searched from the innermost context outwards, and the other
// keys are followed from there. Missing values are nil.
func (r *renderer) lookup(n *name) any {
	if n.dot {
		if len(r.stack) == 0 {
			return nil
		}
		return r.stack[len(r.stack)-1]
	}
	var v any
	found := false
	for i := len(r.stack) - 1; i >= 0 && !found; i-- {
		v, found = child(r.stack[i], n.keys[0])
	}
	if !found {
		return nil
	}
	for _, k := range n.keys[1:] {
		if v, found = child(v, k); !found {
			return nil
		}
	}
	return v
}

// child returns the member k of v: an object's key, an array's element or
// length, a string's length (in UTF-16 code units, as in JavaScript).
func child(v any, k key) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		c, ok := x[k.s]
		return c, ok
	case map[string]string:
		c, ok := x[k.s]
		return c, ok
	case []any:
		if k.idx >= 0 && k.idx < len(x) {
			return x[k.idx], true
		}
		if k.s == "length" {
			return float64(len(x)), true
		}
	case string:
		if k.s == "length" {
			return float64(utf16Len(x)), true
		}
	}
	return nil, false
}

func utf16Len(s string) int {
	n := 0
	for _, c := range s {
		n += utf16.RuneLen(c) // an invalid byte is one U+FFFD
	}
	return n
}

// truthy reports whether v is true in JavaScript, except that an empty
// array is false (mustache renders no section for it).
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0 && !math.IsNaN(x)
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return err != nil || (f != 0 && !math.IsNaN(f))
	case int:
		return x != 0
	case int64:
		return x != 0
	case []any:
		return len(x) > 0
	}
	return true
}

// write appends s, honouring the output limit.
func (r *renderer) write(s string) {
	if r.err != nil {
		return
	}
	if r.limit >= 0 && len(r.buf)+len(s) > r.limit {
		r.buf = append(r.buf, s[:r.limit-len(r.buf)]...)
		r.err = ErrOutputLimit
		return
	}
	r.buf = append(r.buf, s...)
}

// value writes v as JavaScript's String(v) would, HTML-escaped if escape.
func (r *renderer) value(v any, escape bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return
	case string:
		s = x
	case json.Number:
		s = string(x)
	case float64, bool, int, int64:
		// No character to escape: append in place, then cut to the limit.
		if r.err != nil {
			return
		}
		start := len(r.buf)
		r.buf = appendString(r.buf, v)
		if r.limit >= 0 && len(r.buf) > r.limit {
			r.buf = r.buf[:max(start, r.limit)]
			r.err = ErrOutputLimit
		}
		return
	default:
		s = string(appendString(nil, v))
	}
	if !escape {
		r.write(s)
		return
	}
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\'':
			esc = "&#39;"
		default:
			continue
		}
		r.write(s[last:i])
		r.write(esc)
		last = i + 1
	}
	r.write(s[last:])
}

// appendString appends JavaScript's String(v).
func appendString(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return b
	case string:
		return append(b, x...)
	case bool:
		return strconv.AppendBool(b, x)
	case float64:
		return AppendNumber(b, x)
	case json.Number:
		return append(b, x...)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case []any:
		// Array.prototype.toString: elements joined by commas, null and
		// undefined as empty.
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return b
	case map[string]any, map[string]string:
		return append(b, "[object Object]"...)
	}
	return append(b, "[object Object]"...)
}

// AppendNumber appends f formatted as JavaScript's Number.prototype.toString
// does: the shortest digits that round-trip, in positional notation for
// magnitudes in [1e-7, 1e21) and as d.ddde±x otherwise; NaN, Infinity,
// -Infinity; -0 as "0".
func AppendNumber(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	case f == 0:
		return append(b, '0')
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// Shortest round-trip digits and exponent from the 'e' format:
	// "d.ddde±xx".
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	mant, exp := e, 0
	for i := range e {
		if e[i] == 'e' {
			mant = e[:i]
			x, _ := strconv.Atoi(string(e[i+1:]))
			exp = x
			break
		}
	}
	var digits [24]byte
	k := 0
	for _, c := range mant {
		if c != '.' {
			digits[k] = c
			k++
		}
	}
	s := digits[:k]
	n := exp + 1 // f = 0.s × 10^n
	switch {
	case k <= n && n <= 21:
		b = append(b, s...)
		for range n - k {
			b = append(b, '0')
		}
	case 0 < n && n <= 21:
		b = append(b, s[:n]...)
		b = append(b, '.')
		b = append(b, s[n:]...)
	case -6 < n && n <= 0:
		b = append(b, "0."...)
		for range -n {
			b = append(b, '0')
		}
		b = append(b, s...)
	default:
		b = append(b, s[0])
		if k > 1 {
			b = append(b, '.')
			b = append(b, s[1:]...)
		}
		b = append(b, 'e')
		if n-1 >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(n-1), 10)
	}
	return b
}
