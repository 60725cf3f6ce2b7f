package template

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse and Render never panic, that a parsed
// template renders within its limits, and that a template without tags
// renders as itself.
func FuzzParse(f *testing.F) {
	for _, tc := range renderCases {
		f.Add(tc.tmpl, tc.data)
	}
	f.Add("{{=| |=}}|#a||/a|", `{"a":[1,2]}`)
	f.Add("{{#a}}{{^b}}{{{c.0.d}}}{{/b}}{{/a}}", `{"a":{"c":[{"d":"<x>"}]}}`)
	f.Fuzz(func(t *testing.T, tmpl, data string) {
		tm, err := Parse(tmpl)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("Parse(%q) error %T %v; want *SyntaxError", tmpl, err, err)
			}
			return
		}
		var v any
		if json.Unmarshal([]byte(data), &v) != nil {
			v = data
		}
		ctx := Context{v}
		out := tm.Render(ctx)
		limited, err := tm.RenderLimit(ctx, 64)
		if len(limited) > 64 {
			t.Fatalf("RenderLimit(64) gave %d bytes", len(limited))
		}
		if err == nil && limited != out {
			t.Fatalf("RenderLimit = %q; Render = %q", limited, out)
		}
		if err == ErrOutputLimit && (len(limited) != 64 || out[:64] != limited) {
			t.Fatalf("RenderLimit cut = %q; Render = %q", limited, out)
		}
		if tm.IsStatic() && tm.Render(nil) != out {
			t.Fatalf("static template renders differently with data")
		}
		if utf8.ValidString(tmpl) && utf8.ValidString(data) && !utf8.ValidString(out) && err == nil {
			// Escaping and number formatting never break UTF-8.
			t.Fatalf("valid input rendered invalid UTF-8: %q", out)
		}
	})
}
