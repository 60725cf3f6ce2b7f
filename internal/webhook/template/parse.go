package template

import (
	"strconv"
	"strings"
)

// nodeKind is what a node of the compiled tree does.
type nodeKind uint8

const (
	nodeText     nodeKind = iota // literal text
	nodeEscaped                  // {{x}}
	nodeRaw                      // {{{x}}} or {{&x}}
	nodeSection                  // {{#x}}...{{/x}}
	nodeInverted                 // {{^x}}...{{/x}}
)

// node is one element of a compiled template.
type node struct {
	kind  nodeKind
	text  string // nodeText only
	name  name   // every kind but nodeText
	nodes []node // the body of a section
}

// name is a parsed tag name: "." or dot-separated keys.
type name struct {
	dot  bool
	keys []key
}

// key is one step of a dotted name; idx is its value as an array index,
// or -1 when it is not a decimal number.
type key struct {
	s   string
	idx int
}

// maxDepth bounds the nesting of sections.
const maxDepth = 100

// frame is a section being parsed.
type frame struct {
	kind   nodeKind
	name   name
	raw    string // the name as written, to match the closing tag
	offset int    // of the opening tag, for errors
	nodes  []node
}

// Parse compiles a mustache template. It fails with a *SyntaxError on an
// unclosed tag, an empty name, a section closed by another name or never
// closed, a closing tag without a section, a bad delimiter change, or
// sections nested deeper than 100.
func Parse(src string) (*Template, error) {
	p := parser{src: src, otag: "{{", ctag: "}}"}
	p.stack = append(p.stack, frame{})
	if err := p.parse(); err != nil {
		return nil, err
	}
	if len(p.stack) > 1 {
		f := &p.stack[len(p.stack)-1]
		return nil, &SyntaxError{Offset: f.offset, Msg: "unclosed section " + strconv.Quote(f.raw)}
	}
	return &Template{nodes: p.stack[0].nodes, hint: p.hint}, nil
}

// parser holds the state of one Parse.
type parser struct {
	src        string
	otag, ctag string
	stack      []frame
	hint       int
}

// add appends n to the innermost open section (or the root).
func (p *parser) add(n node) {
	f := &p.stack[len(p.stack)-1]
	if n.kind == nodeText {
		p.hint += len(n.text)
		// Merge adjacent text (left by comments and stripped lines).
		if k := len(f.nodes); k > 0 && f.nodes[k-1].kind == nodeText {
			f.nodes[k-1].text += n.text
			return
		}
	}
	f.nodes = append(f.nodes, n)
}

func (p *parser) parse() error {
	src := p.src
	pos := 0
	for {
		i := strings.Index(src[pos:], p.otag)
		if i < 0 {
			if pos < len(src) {
				p.add(node{kind: nodeText, text: src[pos:]})
			}
			return nil
		}
		start := pos + i
		at := start + len(p.otag)
		if at >= len(src) {
			return &SyntaxError{Offset: start, Msg: "unclosed tag"}
		}
		typ := src[at]
		closing := p.ctag
		switch typ {
		case '{':
			closing = "}" + p.ctag
			at++
		case '=':
			closing = "=" + p.ctag
			at++
		case '#', '^', '/', '!', '&', '>':
			at++
		default:
			typ = 0
		}
		j := strings.Index(src[at:], closing)
		if j < 0 {
			return &SyntaxError{Offset: start, Msg: "unclosed tag"}
		}
		content := strings.TrimSpace(src[at : at+j])
		end := at + j + len(closing)

		textEnd := start
		switch typ {
		case '#', '^', '/', '!', '>', '=':
			if ls, le, ok := standalone(src, pos, start, end); ok {
				textEnd, end = ls, le
			}
		}
		if textEnd > pos {
			p.add(node{kind: nodeText, text: src[pos:textEnd]})
		}
		if err := p.tag(typ, content, start); err != nil {
			return err
		}
		pos = end
	}
}

// standalone reports whether the tag at src[start:end] is alone on its
// line (only blanks around it, and nothing else since pos, where the
// previous tag ended). If so it returns where the line starts and where
// the next line begins.
func standalone(src string, pos, start, end int) (lineStart, next int, ok bool) {
	lineStart = strings.LastIndexByte(src[:start], '\n') + 1
	if lineStart < pos || !blank(src[lineStart:start]) {
		return 0, 0, false
	}
	next = end
	for next < len(src) && (src[next] == ' ' || src[next] == '\t') {
		next++
	}
	switch {
	case next == len(src):
	case src[next] == '\n':
		next++
	case strings.HasPrefix(src[next:], "\r\n"):
		next += 2
	default:
		return 0, 0, false
	}
	return lineStart, next, true
}

func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}

// tag handles one tag of type typ (0 for a plain variable).
func (p *parser) tag(typ byte, content string, offset int) error {
	switch typ {
	case '!', '>':
		return nil
	case '=':
		d := strings.Fields(content)
		if len(d) != 2 || strings.Contains(d[0], "=") || strings.Contains(d[1], "=") {
			return &SyntaxError{Offset: offset, Msg: "invalid delimiters " + strconv.Quote(content)}
		}
		p.otag, p.ctag = d[0], d[1]
		return nil
	}
	if content == "" {
		return &SyntaxError{Offset: offset, Msg: "empty tag name"}
	}
	n := parseName(content)
	switch typ {
	case '#', '^':
		if len(p.stack) > maxDepth {
			return &SyntaxError{Offset: offset, Msg: "sections nested too deeply"}
		}
		kind := nodeSection
		if typ == '^' {
			kind = nodeInverted
		}
		p.stack = append(p.stack, frame{kind: kind, name: n, raw: content, offset: offset})
	case '/':
		if len(p.stack) == 1 {
			return &SyntaxError{Offset: offset, Msg: "unopened section " + strconv.Quote(content)}
		}
		f := p.stack[len(p.stack)-1]
		if f.raw != content {
			return &SyntaxError{Offset: offset, Msg: "unclosed section " + strconv.Quote(f.raw) +
				" closed by " + strconv.Quote(content)}
		}
		p.stack = p.stack[:len(p.stack)-1]
		p.add(node{kind: f.kind, name: f.name, nodes: f.nodes})
	case '{', '&':
		p.add(node{kind: nodeRaw, name: n})
	default:
		p.add(node{kind: nodeEscaped, name: n})
	}
	return nil
}

// parseName splits a tag name into keys.
func parseName(s string) name {
	if s == "." {
		return name{dot: true}
	}
	parts := strings.Split(s, ".")
	keys := make([]key, len(parts))
	for i, k := range parts {
		keys[i] = key{s: k, idx: index(k)}
	}
	return name{keys: keys}
}

// index returns k as an array index, or -1.
func index(k string) int {
	if k == "" || len(k) > 9 || (len(k) > 1 && k[0] == '0') {
		return -1
	}
	n := 0
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
