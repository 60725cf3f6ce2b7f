package apitest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"testing"
)

// Placeholders accepted as string values in an expected document.
var placeholders = map[string]func(any) bool{
	"<any>":    func(any) bool { return true },
	"<string>": func(v any) bool { s, ok := v.(string); return ok && s != "" },
	"<number>": func(v any) bool { _, ok := v.(float64); return ok },
	"<hex40>":  matchString(`^[0-9a-f]{40}$`),
	"<hex24>":  matchString(`^[0-9a-f]{24}$`),
	"<iso>":    matchString(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`),
}

func matchString(expr string) func(any) bool {
	re := regexp.MustCompile(expr)
	return func(v any) bool { s, ok := v.(string); return ok && re.MatchString(s) }
}

// MatchJSON fails tb unless got is the JSON document want: same object
// keys, same array lengths and order, equal scalars. In want, the strings
// "<any>", "<string>" (non-empty), "<number>", "<hex40>", "<hex24>" and
// "<iso>" (ISO-8601 UTC with milliseconds) match any such value.
func MatchJSON(tb testing.TB, got []byte, want string) {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Errorf("apitest: response is not JSON: %v: %s", err, got)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatalf("apitest: expected document is not JSON: %v: %s", err, want)
	}
	if diffs := diff("$", g, w, nil); len(diffs) > 0 {
		tb.Errorf("apitest: JSON mismatch:\n  got  %s\n  want %s\n  %v", got, want, diffs)
	}
}

func diff(path string, got, want any, out []string) []string {
	if s, ok := want.(string); ok {
		if match, isPlaceholder := placeholders[s]; isPlaceholder {
			if !match(got) {
				out = append(out, fmt.Sprintf("%s: %v does not match %s", path, got, s))
			}
			return out
		}
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return append(out, fmt.Sprintf("%s: got %T, want object", path, got))
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, inWant := w[k]; !inWant {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, inGot := g[k]
			wv, inWant := w[k]
			switch {
			case !inGot:
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
			case !inWant:
				out = append(out, fmt.Sprintf("%s.%s: unexpected %v", path, k, gv))
			default:
				out = diff(path+"."+k, gv, wv, out)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return append(out, fmt.Sprintf("%s: got %T, want array", path, got))
		}
		if len(g) != len(w) {
			return append(out, fmt.Sprintf("%s: got %d elements, want %d", path, len(g), len(w)))
		}
		for i := range w {
			out = diff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i], out)
		}
		return out
	default:
		if got != want {
			return append(out, fmt.Sprintf("%s: got %#v, want %#v", path, got, want))
		}
		return out
	}
}
