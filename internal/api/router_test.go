package api

import (
	"reflect"
	"testing"
)

// TestRouter checks literal-first matching with backtracking, catch-alls
// and 405s, on the route shapes of docs/particle-api.md
// (docs/particle-api.md#route-matching).
func TestRouter(t *testing.T) {
	rt := func(method, pattern string) route { return route{method: method, pattern: pattern} }
	r := newRouter([]route{
		rt("GET", "/v1/access_tokens/current"),
		rt("DELETE", "/v1/access_tokens/current"),
		rt("DELETE", "/v1/access_tokens/{token}"),
		rt("GET", "/v1/devices"),
		rt("GET", "/v1/devices/events"),
		rt("GET", "/v1/devices/events/{prefix...}"),
		rt("GET", "/v1/devices/{id}"),
		rt("PUT", "/v1/devices/{id}"),
		rt("GET", "/v1/devices/{id}/events"),
		rt("GET", "/v1/devices/{id}/events/{prefix...}"),
		rt("GET", "/v1/devices/{id}/{fnOrVar}"),
		rt("POST", "/v1/devices/{id}/{fnOrVar}"),
		rt("PUT", "/v1/devices/{id}/ping"),
		rt("GET", "/v1/events/{prefix...}"),
	})
	tests := []struct {
		method, path string
		pattern      string // "" for no match
		vals         []pathValue
		allow        []string
	}{
		{"GET", "/v1/access_tokens/current", "/v1/access_tokens/current", nil, nil},
		{"DELETE", "/v1/access_tokens/current", "/v1/access_tokens/current", nil, nil},
		{"DELETE", "/v1/access_tokens/abc", "/v1/access_tokens/{token}", []pathValue{{"token", "abc"}}, nil},
		{"PUT", "/v1/access_tokens/current", "", nil, []string{"DELETE", "GET"}},
		{"GET", "/v1/devices/events", "/v1/devices/events", nil, nil},
		{"GET", "/v1/devices/events/temp/basement", "/v1/devices/events/{prefix...}",
			[]pathValue{{"prefix", "temp/basement"}}, nil},
		{"GET", "/v1/devices/events/temp%2Fbasement", "/v1/devices/events/{prefix...}",
			[]pathValue{{"prefix", "temp/basement"}}, nil},
		{"GET", "/v1/devices/abc", "/v1/devices/{id}", []pathValue{{"id", "abc"}}, nil},
		{"GET", "/v1/devices/abc/", "/v1/devices/{id}", []pathValue{{"id", "abc"}}, nil},
		{"GET", "/v1/devices/abc/events", "/v1/devices/{id}/events", []pathValue{{"id", "abc"}}, nil},
		{"GET", "/v1/devices/abc/events/a/b", "/v1/devices/{id}/events/{prefix...}",
			[]pathValue{{"id", "abc"}, {"prefix", "a/b"}}, nil},
		{"GET", "/v1/devices/abc/temp", "/v1/devices/{id}/{fnOrVar}", []pathValue{{"id", "abc"}, {"fnOrVar", "temp"}}, nil},
		{"PUT", "/v1/devices/abc/ping", "/v1/devices/{id}/ping", []pathValue{{"id", "abc"}}, nil},
		// Only PUT is literal: GET .../ping reads a variable named ping.
		{"GET", "/v1/devices/abc/ping", "/v1/devices/{id}/{fnOrVar}", []pathValue{{"id", "abc"}, {"fnOrVar", "ping"}}, nil},
		{"POST", "/v1/devices/my%20device/go", "/v1/devices/{id}/{fnOrVar}",
			[]pathValue{{"id", "my device"}, {"fnOrVar", "go"}}, nil},
		{"DELETE", "/v1/devices/abc/ping", "", nil, []string{"GET", "POST", "PUT"}},
		{"GET", "/v1/events", "", nil, nil},
		{"GET", "/v1/events/x", "/v1/events/{prefix...}", []pathValue{{"prefix", "x"}}, nil},
		{"GET", "/v1/devices/abc/temp/extra/more", "", nil, nil},
		{"GET", "/v1//devices", "", nil, nil},
		{"GET", "/", "", nil, nil},
	}
	for _, tt := range tests {
		got, vals, allow := r.lookup(tt.method, tt.path)
		pattern := ""
		if got != nil {
			pattern = got.pattern
		}
		if pattern != tt.pattern || !reflect.DeepEqual(vals, tt.vals) || !reflect.DeepEqual(allow, tt.allow) {
			t.Errorf("%s %s = %q %v %v; want %q %v %v", tt.method, tt.path, pattern, vals, allow, tt.pattern, tt.vals, tt.allow)
		}
	}
}

func TestRouterRejectsBadTables(t *testing.T) {
	for name, routes := range map[string][]route{
		"duplicate":          {{method: "GET", pattern: "/a"}, {method: "GET", pattern: "/a"}},
		"renamed parameter":  {{method: "GET", pattern: "/a/{x}"}, {method: "PUT", pattern: "/a/{y}"}},
		"catch-all not last": {{method: "GET", pattern: "/a/{x...}/b"}},
		"relative":           {{method: "GET", pattern: "a"}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			newRouter(routes)
		}()
	}
}

// TestRouteTable builds the real table: no duplicates or conflicts.
func TestRouteTable(t *testing.T) {
	s := &server{}
	newRouter(s.routes())
	for _, rt := range s.routes() {
		if rt.handler == nil {
			t.Errorf("%s %s has no handler", rt.method, rt.pattern)
		}
	}
}
