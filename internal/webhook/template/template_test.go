package template

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// decode parses a JSON document as a webhook would: numbers as float64, or
// as json.Number when useNumber.
func decode(t testing.TB, doc string, useNumber bool) any {
	t.Helper()
	if doc == "" {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(doc))
	if useNumber {
		d.UseNumber()
	}
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	return v
}

// renderCases are shared by the tests, the fuzz seeds and the benchmarks.
var renderCases = []struct {
	name string
	tmpl string
	data string // JSON, rendered as Context{data}
	want string
}{
	{"text only", "hello world", `{}`, "hello world"},
	{"empty", "", `{}`, ""},
	{"variable", "Hi {{name}}!", `{"name":"Abu"}`, "Hi Abu!"},
	{"spaces in tag", "{{ name }}|{{{ name }}}|{{& name }}", `{"name":"x"}`, "x|x|x"},
	{"escape", "{{v}}", `{"v":"<a href=\"x\">Tom & Jerry's</a>"}`,
		"&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"},
	{"no escape of slash and equals", "{{v}}", `{"v":"a/b=c` + "`" + `"}`, "a/b=c`"},
	{"triple raw", "{{{v}}}", `{"v":"<&>\"'"}`, `<&>"'`},
	{"ampersand raw", "{{&v}}", `{"v":"<&>\"'"}`, `<&>"'`},
	{"missing", "[{{nope}}][{{{nope}}}][{{a.b.c}}]", `{"a":{}}`, "[][][]"},
	{"null", "[{{n}}]", `{"n":null}`, "[]"},
	{"dotted", "{{a.b}}", `{"a":{"b":"deep"}}`, "deep"},
	{"index", "{{c.0.d}}-{{c.1}}", `{"c":[{"d":"x"},7]}`, "x-7"},
	{"index out of range", "[{{c.5}}]", `{"c":[1]}`, "[]"},
	{"leading zero is no index", "[{{c.01}}]", `{"c":[1,2]}`, "[]"},
	{"numeric object key", "{{o.0}}", `{"o":{"0":"zero"}}`, "zero"},
	{"array length", "{{c.length}}", `{"c":[1,2,3]}`, "3"},
	{"string length utf16", "{{s.length}}", `{"s":"h😀"}`, "3"},
	{"integer", "{{n}}", `{"n":42}`, "42"},
	{"float", "{{n}}", `{"n":21.5}`, "21.5"},
	{"negative", "{{n}}", `{"n":-0.25}`, "-0.25"},
	{"big", "{{n}}", `{"n":1e21}`, "1e+21"},
	{"below big", "{{n}}", `{"n":123456789012345680000}`, "123456789012345680000"},
	{"small", "{{n}}", `{"n":0.0000001}`, "1e-7"},
	{"above small", "{{n}}", `{"n":0.000001}`, "0.000001"},
	{"bools", "{{t}} {{f}}", `{"t":true,"f":false}`, "true false"},
	{"array value", "{{a}}", `{"a":[1,"x",null,[2,3],true]}`, "1,x,,2,3,true"},
	{"array value escaped", "{{a}}", `{"a":["<b>"]}`, "&lt;b&gt;"},
	{"object value", "{{o}}", `{"o":{"a":1}}`, "[object Object]"},
	{"section true", "{{#t}}yes{{/t}}{{#f}}no{{/f}}", `{"t":true,"f":false}`, "yes"},
	{"section missing", "a{{#x}}b{{/x}}c", `{}`, "ac"},
	{"section array", "{{#items}}<{{name}}>{{/items}}", `{"items":[{"name":"a&"},{"name":"b"}]}`, "<a&amp;><b>"},
	{"section array raw", "{{#items}}<{{{name}}}>{{/items}}", `{"items":[{"name":"a"},{"name":"b"}]}`, "<a><b>"},
	{"section scalar array dot", "{{#n}}{{.}};{{/n}}", `{"n":[1,2.5,"x"]}`, "1;2.5;x;"},
	{"section empty array", "{{#n}}x{{/n}}", `{"n":[]}`, ""},
	{"section object push", "{{#o}}{{a}}-{{b}}{{/o}}", `{"o":{"a":1},"b":2}`, "1-2"},
	{"section empty object truthy", "{{#o}}yes{{/o}}", `{"o":{}}`, "yes"},
	{"section string pushed", "{{#s}}[{{.}}]{{/s}}", `{"s":"str"}`, "[str]"},
	{"section empty string", "{{#s}}x{{/s}}", `{"s":""}`, ""},
	{"section zero", "{{#z}}x{{/z}}{{^z}}zero{{/z}}", `{"z":0}`, "zero"},
	{"section number pushed", "{{#n}}{{.}}{{/n}}", `{"n":3}`, "3"},
	{"inverted", "{{^x}}none{{/x}}{{^e}}empty{{/e}}{{^f}}false{{/f}}{{^t}}T{{/t}}", `{"e":[],"f":false,"t":1}`, "noneemptyfalse"},
	{"inverted null", "{{^n}}null{{/n}}", `{"n":null}`, "null"},
	{"nested sections", "{{#a}}{{#b}}{{c}}{{/b}}{{/a}}", `{"a":[{"b":[{"c":1},{"c":2}]},{"b":{"c":3}}]}`, "123"},
	{"outer context", "{{#a}}{{x}}{{/a}}", `{"x":"out","a":[{},{"x":"in"}]}`, "outin"},
	{"dotted section", "{{#a.b}}{{c}}{{/a.b}}", `{"a":{"b":{"c":"y"}}}`, "y"},
	{"dotted does not fall back", "{{#a}}[{{b.c}}]{{/a}}", `{"b":{"c":"outer"},"a":{"b":{}}}`, "[]"},
	{"dot at root", "{{.}}", `"root"`, "root"},
	{"comment", "a{{! ignore me }}b", `{}`, "ab"},
	{"multiline comment", "a{{!\nx\n}}b", `{}`, "ab"},
	{"partial renders empty", "a{{> p}}b", `{}`, "ab"},
	{"set delimiters", "{{=<% %>=}}<% x %>{{x}}<%={{ }}=%>{{x}}", `{"x":"v"}`, "v{{x}}v"},
	{"triple with custom delimiters", "{{=[ ]=}}[{x}]", `{"x":"<"}`, "<"},
	{"standalone section lines", "a\n{{#t}}\nb\n{{/t}}\nc\n", `{"t":true}`, "a\nb\nc\n"},
	{"standalone indented", "a\n  {{#t}}  \nb\n\t{{/t}}\r\nc", `{"t":true}`, "a\nb\nc"},
	{"standalone comment", "a\n{{! x }}\nb", `{}`, "a\nb"},
	{"standalone at end", "a\n{{#t}}b{{/t}}", `{"t":true}`, "a\nb"},
	{"not standalone with text", "a {{#t}}\nb{{/t}}", `{"t":true}`, "a \nb"},
	{"variable never standalone", "a\n{{x}}\nb", `{"x":"1"}`, "a\n1\nb"},
	{"two tags on a line", "{{#t}}{{/t}}\nx", `{"t":true}`, "\nx"},
	{"stray closing braces", "a }} b", `{}`, "a }} b"},
	{"single braces", "{a} {x}", `{"x":1}`, "{a} {x}"},
	{"json template", `{"v": {{v}}, "s": "{{{s}}}"}`, `{"v":12.50,"s":"a\"b"}`, `{"v": 12.5, "s": "a"b"}`},
	{"length of object key", "{{o.length}}", `{"o":{"length":"L"}}`, "L"},
}

func TestRender(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.tmpl, Context{decode(t, tc.data, false)})
			if err != nil {
				t.Fatalf("Render(%q): %v", tc.tmpl, err)
			}
			if got != tc.want {
				t.Errorf("Render(%q) with %s = %q; want %q", tc.tmpl, tc.data, got, tc.want)
			}
		})
	}
}

func TestRenderJSONNumber(t *testing.T) {
	tests := []struct{ data, tmpl, want string }{
		{`{"n":12.50}`, "{{n}}", "12.50"},
		{`{"n":1e3}`, "{{n}}", "1e3"},
		{`{"n":0.0}`, "{{#n}}x{{/n}}{{^n}}zero{{/n}}", "zero"},
		{`{"n":-0}`, "{{^n}}zero{{/n}}", "zero"},
		{`{"n":[1.0,2]}`, "{{n}}", "1.0,2"},
		{`{"n":0.5}`, "{{#n}}[{{.}}]{{/n}}", "[0.5]"},
	}
	for _, tc := range tests {
		got, err := Render(tc.tmpl, Context{decode(t, tc.data, true)})
		if err != nil || got != tc.want {
			t.Errorf("Render(%q) with %s = %q, %v; want %q", tc.tmpl, tc.data, got, err, tc.want)
		}
	}
}

func TestContextStack(t *testing.T) {
	outer := map[string]any{"a": "outer", "b": "outer-b", "o": map[string]any{"x": "ox"}}
	inner := map[string]any{"a": "inner", "o": map[string]any{}}
	tm, err := Parse("{{a}} {{b}} [{{o.x}}] {{c}}")
	if err != nil {
		t.Fatal(err)
	}
	// The innermost context wins; a dotted name resolves entirely in the
	// context holding its first key.
	if got, want := tm.Render(Context{outer, inner}), "inner outer-b [] "; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if got, want := tm.Render(Context{inner, outer}), "outer outer-b [ox] "; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if got := tm.Render(nil); got != "  [] " {
		t.Errorf("nil context: got %q", got)
	}
	ss := map[string]string{"a": "s<"}
	if got := tm.Render(Context{ss}); got != "s&lt;  [] " {
		t.Errorf("map[string]string: got %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		tmpl   string
		offset int
		msg    string
	}{
		{"abc {{x", 4, "unclosed tag"},
		{"{{", 0, "unclosed tag"},
		{"{{{x}}", 0, "unclosed tag"},
		{"{{}}", 0, "empty tag name"},
		{"{{{ }}}", 0, "empty tag name"},
		{"{{#}}{{/}}", 0, "empty tag name"},
		{"{{#a}}", 0, `unclosed section "a"`},
		{"x{{#a}}{{#b}}{{/a}}{{/b}}", 13, `unclosed section "b" closed by "a"`},
		{"{{/a}}", 0, `unopened section "a"`},
		{"{{=<%=}}", 0, "invalid delimiters"},
		{"{{=a b c=}}", 0, "invalid delimiters"},
		{"{{=a= b=}}", 0, "invalid delimiters"},
		{strings.Repeat("{{#a}}", maxDepth+1), 6 * maxDepth, "nested too deeply"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.tmpl)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v; want a *SyntaxError", tc.tmpl, err)
			continue
		}
		if se.Offset != tc.offset || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Parse(%q) = %v; want %q at offset %d", tc.tmpl, err, tc.msg, tc.offset)
		}
		if !strings.HasPrefix(err.Error(), "template: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
		if _, err := Render(tc.tmpl, nil); err == nil {
			t.Errorf("Render(%q) did not fail", tc.tmpl)
		}
	}
	if _, err := Parse(strings.Repeat("{{#a}}", maxDepth) + strings.Repeat("{{/a}}", maxDepth)); err != nil {
		t.Errorf("nesting of %d: %v", maxDepth, err)
	}
}

func TestRenderLimit(t *testing.T) {
	data := Context{map[string]any{"s": "<&>", "n": 12345.5, "a": []any{"x", "y", "z"}}}
	tests := []struct {
		tmpl  string
		limit int
		want  string
		err   error
	}{
		{"abcdef", 3, "abc", ErrOutputLimit},
		{"abc", 3, "abc", nil},
		{"abc", -1, "abc", nil},
		{"ab{{s}}", 5, "ab&lt", ErrOutputLimit},
		{"ab{{{s}}}", 4, "ab<&", ErrOutputLimit},
		{"ab{{n}}", 4, "ab12", ErrOutputLimit},
		{"ab{{n}}", 9, "ab12345.5", nil},
		{"{{#a}}{{.}}-{{/a}}", 4, "x-y-", ErrOutputLimit},
		{"{{#a}}{{.}}-{{/a}}", 0, "", ErrOutputLimit},
		{"{{a}}", 3, "x,y", ErrOutputLimit},
	}
	for _, tc := range tests {
		tm, err := Parse(tc.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tm.RenderLimit(data, tc.limit)
		if got != tc.want || err != tc.err {
			t.Errorf("RenderLimit(%q, %d) = %q, %v; want %q, %v", tc.tmpl, tc.limit, got, err, tc.want, tc.err)
		}
	}
}

func TestWorkLimit(t *testing.T) {
	arr := make([]any, 200)
	for i := range arr {
		arr[i] = float64(i)
	}
	// 200^4 iterations with no output: stopped by the step budget.
	tm, err := Parse("{{#a}}{{#a}}{{#a}}{{#a}}{{/a}}{{/a}}{{/a}}{{/a}}end")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.RenderLimit(Context{map[string]any{"a": arr}}, -1)
	if err != ErrWorkLimit || got != "" {
		t.Errorf("got %q, %v; want ErrWorkLimit", got, err)
	}
	if got := tm.Render(Context{map[string]any{"a": arr[:5]}}); got != "end" {
		t.Errorf("small input: got %q", got)
	}
}

func TestIsStatic(t *testing.T) {
	for tmpl, want := range map[string]bool{"": true, "abc": true, "a{{! c }}b": true, "{{x}}": false, "{{#a}}{{/a}}": false} {
		tm, err := Parse(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if tm.IsStatic() != want {
			t.Errorf("IsStatic(%q) = %v; want %v", tmpl, !want, want)
		}
	}
}

func TestAppendNumber(t *testing.T) {
	tenth := 0.1 // a variable: constant arithmetic would be exact
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{1, "1"},
		{-1, "-1"},
		{0.1, "0.1"},
		{tenth + 2*tenth, "0.30000000000000004"},
		{123.456, "123.456"},
		{100, "100"},
		{1e20, "100000000000000000000"},
		{1e21, "1e+21"},
		{1.5e21, "1.5e+21"},
		{1e-6, "0.000001"},
		{1.5e-6, "0.0000015"},
		{1e-7, "1e-7"},
		{-1.25e-7, "-1.25e-7"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{9007199254740993, "9007199254740992"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"},
	}
	for _, tc := range tests {
		if got := string(AppendNumber(nil, tc.f)); got != tc.want {
			t.Errorf("AppendNumber(%v) = %q; want %q", tc.f, got, tc.want)
		}
	}
}

func TestConcurrentRender(t *testing.T) {
	tm, err := Parse("{{#a}}{{b}}{{/a}}")
	if err != nil {
		t.Fatal(err)
	}
	ctx := Context{map[string]any{"a": []any{map[string]any{"b": "x"}, map[string]any{"b": "y"}}}}
	done := make(chan string)
	for range 8 {
		go func() { done <- tm.Render(ctx) }()
	}
	for range 8 {
		if got := <-done; got != "xy" {
			t.Errorf("got %q", got)
		}
	}
}
