// Package template renders the mustache templates of webhooks
// (docs/webhooks.md#templates): `{{x}}` writes a value HTML-escaped
// (& < > " '), `{{{x}}}` and `{{&x}}` write it raw; names are looked up in
// a stack of contexts and may be dotted paths with array indices
// (`{{a.b}}`, `{{c.0.d}}`, `{{.}}`); `{{#x}}..{{/x}}` renders its body for a
// truthy value (once per element of an array, with an object or scalar
// pushed as the context), `{{^x}}..{{/x}}` for a falsy value or an empty
// array; `{{! comment }}`, partials `{{> x}}` (rendered empty) and
// delimiter changes `{{=<% %>=}}` are accepted. Lines holding only a
// section, comment, partial or delimiter tag are removed, as the mustache
// spec says.
//
// Values are what encoding/json decodes into an `any` (map[string]any,
// []any, string, float64 or json.Number, bool, nil). They print as
// JavaScript's String() would, because Particle's cloud is written in
// JavaScript: numbers in JavaScript's shortest form (a json.Number keeps
// its text), arrays as their elements joined by commas, objects as
// "[object Object]", null and missing values as nothing.
//
// Parse compiles a template once; a *Template is immutable and safe for
// concurrent use, so callers may cache it. Rendering never fails: bad
// input is rejected by Parse, and a template that would do too much work
// (nested loops over large arrays) stops after a fixed budget.
package template
