package metrics

import (
	"fmt"
	"strconv"
	"strings"
)

// parsedFamily is one family read back from exposition text.
type parsedFamily struct {
	Name, Help, Type string
	Samples          []parsedSample
}

// parsedSample is one sample read back from exposition text.
type parsedSample struct {
	Labels map[string]string
	Value  float64
}

// parseExposition is a strict reader of the text format 0.0.4 as this
// package writes it: every family starts with # HELP then # TYPE, its
// samples follow contiguously, names repeat nowhere else, and the text
// ends with a line feed. It exists to check the writer from the outside.
func parseExposition(text string) ([]parsedFamily, error) {
	if text == "" {
		return nil, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("text does not end with a line feed")
	}
	var fams []parsedFamily
	seen := map[string]bool{}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		rest, ok := strings.CutPrefix(line, "# HELP ")
		if !ok {
			return nil, fmt.Errorf("line %d: want # HELP, got %q", i+1, line)
		}
		name, help, _ := strings.Cut(rest, " ")
		if seen[name] {
			return nil, fmt.Errorf("line %d: family %s appears twice", i+1, name)
		}
		seen[name] = true
		h, err := unescape(help, false)
		if err != nil {
			return nil, fmt.Errorf("line %d: help: %v", i+1, err)
		}
		i++
		if i == len(lines) {
			return nil, fmt.Errorf("family %s: no # TYPE", name)
		}
		typ, ok := strings.CutPrefix(lines[i], "# TYPE "+name+" ")
		if !ok || (typ != "counter" && typ != "gauge") {
			return nil, fmt.Errorf("line %d: want # TYPE %s counter|gauge, got %q", i+1, name, lines[i])
		}
		f := parsedFamily{Name: name, Help: h, Type: typ}
		for i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "#") {
			i++
			s, err := parseSample(name, lines[i])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			f.Samples = append(f.Samples, s)
		}
		if len(f.Samples) == 0 {
			return nil, fmt.Errorf("family %s has no samples", name)
		}
		fams = append(fams, f)
	}
	return fams, nil
}

// parseSample reads `name{a="b",...} value` or `name value`.
func parseSample(name, line string) (parsedSample, error) {
	rest, ok := strings.CutPrefix(line, name)
	if !ok {
		return parsedSample{}, fmt.Errorf("sample %q is not of family %s", line, name)
	}
	s := parsedSample{Labels: map[string]string{}}
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			eq := strings.Index(rest, `="`)
			if eq <= 0 {
				return s, fmt.Errorf("sample %q: bad label", line)
			}
			lname := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case '\\', '"':
						val.WriteByte(rest[j])
					case 'n':
						val.WriteByte('\n')
					default:
						return s, fmt.Errorf("sample %q: bad escape", line)
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("sample %q: unterminated label value", line)
			}
			if _, dup := s.Labels[lname]; dup {
				return s, fmt.Errorf("sample %q: label %s twice", line, lname)
			}
			s.Labels[lname] = val.String()
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				continue
			}
			if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("sample %q: labels not closed", line)
			}
			rest = rest[1:]
			break
		}
	}
	v, ok := strings.CutPrefix(rest, " ")
	if !ok {
		return s, fmt.Errorf("sample %q: no space before the value", line)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return s, fmt.Errorf("sample %q: value: %v", line, err)
	}
	s.Value = f
	return s, nil
}

// unescape undoes the escaping of help texts (\\ and \n) or, with quote,
// of label values (\" too).
func unescape(s string, quote bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("trailing backslash")
		}
		i++
		switch {
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && quote:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("bad escape \\%c", s[i])
		}
	}
	return b.String(), nil
}
