package template

import (
	"errors"
	"fmt"
)

// Context is the stack of values a template's names are looked up in,
// innermost last: a name resolves in the last value that has its first
// key. A single JSON document is rendered with Context{doc}.
type Context []any

// Template is a compiled template. It is immutable and safe for concurrent
// use.
type Template struct {
	nodes []node
	// hint is the number of bytes of literal text, a first guess of the
	// output size.
	hint int
}

// Errors of RenderLimit.
var (
	// ErrOutputLimit means the output reached the caller's byte limit; the
	// output returned with it is cut at the limit.
	ErrOutputLimit = errors.New("template: output exceeds the limit")
	// ErrWorkLimit means rendering stopped after MaxSteps steps; the output
	// returned with it is what was rendered until then.
	ErrWorkLimit = errors.New("template: rendering takes too many steps")
)

// MaxSteps bounds the work of one rendering: every tag visited and every
// array element iterated is one step. Templates over real data stay far
// below it; nested sections over large arrays are cut off.
const MaxSteps = 1 << 20

// A SyntaxError reports a malformed template.
type SyntaxError struct {
	// Offset is the byte offset in the template where the problem is.
	Offset int
	// Msg says what is wrong.
	Msg string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("template: %s at offset %d", e.Msg, e.Offset)
}

// Render parses src and renders it with ctx, a convenience for templates
// used once.
func Render(src string, ctx Context) (string, error) {
	t, err := Parse(src)
	if err != nil {
		return "", err
	}
	return t.Render(ctx), nil
}

// Render renders the template with ctx. Output beyond MaxSteps of work is
// silently cut; use RenderLimit to learn about it.
func (t *Template) Render(ctx Context) string {
	s, _ := t.RenderLimit(ctx, -1)
	return s
}

// RenderLimit renders the template with ctx, producing at most maxBytes
// bytes (no limit when maxBytes < 0). It returns ErrOutputLimit with the
// output cut at maxBytes, or ErrWorkLimit with the partial output, when
// rendering had to stop.
func (t *Template) RenderLimit(ctx Context, maxBytes int) (string, error) {
	if t == nil || len(t.nodes) == 0 {
		return "", nil
	}
	// Fast path: a template that is only text.
	if len(t.nodes) == 1 && t.nodes[0].kind == nodeText {
		s := t.nodes[0].text
		if maxBytes >= 0 && len(s) > maxBytes {
			return s[:maxBytes], ErrOutputLimit
		}
		return s, nil
	}
	hint := t.hint + 16
	if maxBytes >= 0 && hint > maxBytes {
		hint = maxBytes
	}
	r := renderer{limit: maxBytes, buf: make([]byte, 0, hint)}
	var stack [8]any
	r.stack = append(stack[:0], ctx...)
	r.render(t.nodes)
	return string(r.buf), r.err
}

// IsStatic reports whether the template has no tags, so that rendering
// always yields the same text.
func (t *Template) IsStatic() bool {
	for i := range t.nodes {
		if t.nodes[i].kind != nodeText {
			return false
		}
	}
	return true
}
