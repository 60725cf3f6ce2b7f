package api

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// router matches request paths against the route table with a segment
// trie. Patterns are slash-separated segments; a segment is a literal, a
// parameter "{name}" matching one non-empty segment, or a final catch-all
// "{name...}" matching one or more remaining segments (the prefix of an
// event stream may contain slashes, docs/particle-api.md#route-matching).
//
// Literal segments win over parameters and parameters over catch-alls, with
// backtracking: "/v1/access_tokens/current" beats "/v1/access_tokens/{token}",
// and "GET /v1/devices/{id}/ping" still reaches "{id}/{var}" when only
// "PUT .../ping" is literal. Matching is done per method first; a path that
// matches only under other methods yields 405 with those methods.
type router struct {
	root *node
}

// node is one position in the trie.
type node struct {
	literals  map[string]*node
	param     *node
	paramName string
	catch     map[string]*route // method → route of a "{name...}" child
	catchName string
	routes    map[string]*route // method → route ending here
}

// pathValue is one matched parameter.
type pathValue struct {
	name, value string
}

// newRouter builds the trie. It panics on malformed or duplicate
// patterns: the table is code, so these are programming errors.
func newRouter(routes []route) *router {
	rt := &router{root: &node{}}
	for i := range routes {
		rt.add(&routes[i])
	}
	return rt
}

func (rt *router) add(r *route) {
	if !strings.HasPrefix(r.pattern, "/") {
		panic(fmt.Sprintf("api: pattern %q must start with /", r.pattern))
	}
	n := rt.root
	segs := strings.Split(strings.TrimPrefix(r.pattern, "/"), "/")
	for i, seg := range segs {
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}"):
			if i != len(segs)-1 {
				panic(fmt.Sprintf("api: catch-all must be last in %q", r.pattern))
			}
			name := seg[1 : len(seg)-4]
			if n.catch == nil {
				n.catch, n.catchName = map[string]*route{}, name
			} else if n.catchName != name {
				panic(fmt.Sprintf("api: %q renames catch-all %q", r.pattern, n.catchName))
			}
			if n.catch[r.method] != nil {
				panic(fmt.Sprintf("api: duplicate route %s %s", r.method, r.pattern))
			}
			n.catch[r.method] = r
			return
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			name := seg[1 : len(seg)-1]
			if n.param == nil {
				n.param, n.paramName = &node{}, name
			} else if n.paramName != name {
				panic(fmt.Sprintf("api: %q renames parameter %q", r.pattern, n.paramName))
			}
			n = n.param
		default:
			if n.literals == nil {
				n.literals = map[string]*node{}
			}
			c := n.literals[seg]
			if c == nil {
				c = &node{}
				n.literals[seg] = c
			}
			n = c
		}
	}
	if n.routes == nil {
		n.routes = map[string]*route{}
	}
	if n.routes[r.method] != nil {
		panic(fmt.Sprintf("api: duplicate route %s %s", r.method, r.pattern))
	}
	n.routes[r.method] = r
}

// lookup finds the route for method and the escaped request path. When no
// route matches, allow lists the methods that would match the path (empty:
// 404; otherwise 405).
func (rt *router) lookup(method, escapedPath string) (r *route, vals []pathValue, allow []string) {
	p := escapedPath
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	raw := strings.Split(strings.TrimPrefix(p, "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		} else {
			segs[i] = s
		}
	}
	if r, vals = rt.root.find(segs, raw, 0, method, nil); r != nil {
		return r, vals, nil
	}
	set := map[string]bool{}
	rt.root.collect(segs, 0, set)
	for m := range set {
		allow = append(allow, m)
	}
	sort.Strings(allow)
	return nil, nil, allow
}

func (n *node) find(segs, raw []string, i int, method string, vals []pathValue) (*route, []pathValue) {
	if i == len(segs) {
		if r := n.routes[method]; r != nil {
			return r, vals
		}
		return nil, nil
	}
	if c := n.literals[segs[i]]; c != nil {
		if r, v := c.find(segs, raw, i+1, method, vals); r != nil {
			return r, v
		}
	}
	if n.param != nil && segs[i] != "" {
		if r, v := n.param.find(segs, raw, i+1, method, append(vals, pathValue{n.paramName, segs[i]})); r != nil {
			return r, v
		}
	}
	if r := n.catch[method]; r != nil {
		rest := strings.Join(raw[i:], "/")
		if u, err := url.PathUnescape(rest); err == nil {
			rest = u
		}
		if rest != "" {
			return r, append(vals, pathValue{n.catchName, rest})
		}
	}
	return nil, nil
}

// collect adds to set the methods of every route matching segs[i:].
func (n *node) collect(segs []string, i int, set map[string]bool) {
	if i == len(segs) {
		for m := range n.routes {
			set[m] = true
		}
		return
	}
	if c := n.literals[segs[i]]; c != nil {
		c.collect(segs, i+1, set)
	}
	if n.param != nil && segs[i] != "" {
		n.param.collect(segs, i+1, set)
	}
	for m := range n.catch {
		set[m] = true
	}
}
