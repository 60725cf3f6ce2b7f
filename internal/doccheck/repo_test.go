package doccheck

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The repository must stand alone: comments and docs cite docs/*.md, never
// material outside the repository, and every docs/ link they contain must
// lead to an existing file and heading (the rule is written down in
// docs/dependencies.md, Documentation that stands alone).

// sectionSign is built so that this file does not match its own check.
var sectionSign = string(rune(0xA7))

// outsideCitations are the forms in which the project's old notes cited
// material that a clone of the repository does not have.
var outsideCitations = []string{
	"../" + "shared",
	"shared" + "/spec",
	"shared" + "/seeds",
	"spec " + sectionSign,
	"Spec " + sectionSign,
	"cloud-api" + ".md",
}

var (
	// bareSection matches a section sign followed by a number.
	bareSection = regexp.MustCompile(sectionSign + `\s?\d`)
	// rfcSection matches an RFC's own section numbers, which are fine.
	rfcSection = regexp.MustCompile(`RFC \d+ ` + sectionSign + `\s?\d`)
	// docsRef matches a repository-rooted reference to a docs page.
	docsRef = regexp.MustCompile(`\bdocs/([A-Za-z0-9_.-]+\.md)(#[\w-]+)?`)
	// mdLink matches the target of a markdown link.
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// heading matches a markdown heading line.
	heading = regexp.MustCompile(`^#{1,6}\s+(.+?)\s*#*\s*$`)
	// docsSection matches a citation by heading text: "docs/x.md, Heading".
	docsSection = regexp.MustCompile(`\bdocs/([A-Za-z0-9_.-]+\.md), ([A-Z][^.;:)\x60\n]*)`)
	// boldLabel matches a paragraph that starts with a bold label, which
	// the docs use like a small heading ("**G12. Claim codes.**").
	boldLabel = regexp.MustCompile(`^\*\*([^*]+)\*\*`)
	// numbering matches a leading section number ("3.3 ", "G12. ").
	numbering = regexp.MustCompile(`^(?:[A-Z]?\d+(?:\.\d+)*\.?\s+)`)
)

// scanned reports whether a file is text that the checks read.
func scanned(path string) bool {
	switch filepath.Ext(path) {
	case ".go", ".md", ".js", ".mjs", ".sh", ".sql", ".yml", ".yaml", ".txt":
		return true
	}
	base := filepath.Base(path)
	return base == "Makefile" || base == "run"
}

// skippedDir reports whether a directory holds no project text.
func skippedDir(name string) bool {
	switch name {
	case ".git", "node_modules", "bin", "vendor":
		return true
	}
	return strings.HasPrefix(name, "wick-data")
}

// repoRoot finds the module root above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("doccheck: no go.mod above the test directory")
		}
		dir = parent
	}
}

// repoFiles lists the text files of the repository, relative to root.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skippedDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if scanned(path) {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// citationProblem returns why a line cites material outside the
// repository, or "" when it does not.
func citationProblem(line string) string {
	for _, c := range outsideCitations {
		if strings.Contains(line, c) {
			return "cites " + strings.TrimSpace(c) + " (outside the repository); cite docs/*.md instead"
		}
	}
	if !strings.Contains(line, sectionSign) {
		return ""
	}
	rest := rfcSection.ReplaceAllString(line, "")
	if bareSection.MatchString(rest) {
		return "cites a bare section number; cite a docs/*.md heading instead"
	}
	return ""
}

// anchor returns the fragment that GitHub gives a heading: lower case,
// punctuation dropped, spaces turned into hyphens.
func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// titleKey normalises a heading or a cited title for comparison: lower
// case, no section number, no markup, single spaces.
func titleKey(s string) string {
	s = strings.NewReplacer("`", "", "*", "").Replace(s)
	s = numbering.ReplaceAllString(strings.TrimSpace(s), "")
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// titles returns the normalised headings and bold paragraph labels of a
// markdown file.
func titles(data []byte) []string {
	var out []string
	fence := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			out = append(out, titleKey(m[1]))
		} else if m := boldLabel.FindStringSubmatch(line); m != nil {
			out = append(out, titleKey(strings.TrimSuffix(strings.TrimSpace(m[1]), ".")))
		}
	}
	return out
}

// titleCited reports whether a cited title (which may run on into the
// sentence, or stop where a comment line ends) names one of titles.
func titleCited(titles []string, cited string) bool {
	c := titleKey(cited)
	for _, t := range titles {
		if t != "" && (strings.HasPrefix(t, c) || strings.HasPrefix(c, t)) {
			return true
		}
	}
	return false
}

// anchors returns the heading fragments of a markdown file, with GitHub's
// -1, -2 suffixes for repeated headings; code blocks are skipped.
func anchors(data []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := anchor(m[1])
		if n := seen[a]; n > 0 {
			out[a+"-"+itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// itoa formats a small non-negative number.
func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}

// linkChecker resolves docs links against the files on disk.
type linkChecker struct {
	root   string
	cache  map[string]map[string]bool // path → anchors; nil when missing
	titles map[string][]string        // path → normalised titles
}

// checkTitle returns why "path, title" does not name a heading of an
// existing path, or "".
func (c *linkChecker) checkTitle(path, title string) string {
	if c.check(path) != "" {
		return "" // the missing file is reported by the docsRef check
	}
	ts, ok := c.titles[path]
	if !ok {
		data, _ := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(path)))
		ts = titles(data)
		c.titles[path] = ts
	}
	if !titleCited(ts, title) {
		return path + " has no heading " + strconvQuote(title)
	}
	return ""
}

// strconvQuote quotes s for a message.
func strconvQuote(s string) string { return "\"" + strings.TrimSpace(s) + "\"" }

// check returns why target (a path relative to the repository root,
// with an optional #fragment) does not resolve, or "".
func (c *linkChecker) check(target string) string {
	path, frag, _ := strings.Cut(target, "#")
	as, ok := c.cache[path]
	if !ok {
		data, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(path)))
		if err == nil {
			if strings.HasSuffix(path, ".md") {
				as = anchors(data)
			} else {
				as = map[string]bool{}
			}
		} else if fi, serr := os.Stat(filepath.Join(c.root, filepath.FromSlash(path))); serr == nil && fi.IsDir() {
			as = map[string]bool{}
		}
		c.cache[path] = as
	}
	if as == nil {
		return path + " does not exist"
	}
	if frag != "" && strings.HasSuffix(path, ".md") && !as[frag] {
		return path + " has no heading #" + frag
	}
	return ""
}

// TestRepositoryStandsAlone walks the repository's text files and fails
// on citations of material outside the repository and on docs links
// that lead nowhere.
func TestRepositoryStandsAlone(t *testing.T) {
	root := repoRoot(t)
	links := &linkChecker{root: root, cache: map[string]map[string]bool{}, titles: map[string][]string{}}
	self := "internal/doccheck/repo_test.go"
	for _, file := range repoFiles(t, root) {
		if file == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(data, 0) >= 0 {
			continue // binary
		}
		isMD := strings.HasSuffix(file, ".md")
		for i, line := range strings.Split(string(data), "\n") {
			pos := file + ":" + itoa(i+1)
			if p := citationProblem(line); p != "" {
				t.Errorf("%s: %s", pos, p)
			}
			if !strings.Contains(line, "docs/") && !(isMD && strings.Contains(line, "](")) {
				continue // the common case: nothing to resolve
			}
			for _, m := range docsRef.FindAllStringSubmatch(line, -1) {
				if p := links.check("docs/" + m[1] + m[2]); p != "" {
					t.Errorf("%s: %s", pos, p)
				}
			}
			for _, m := range docsSection.FindAllStringSubmatch(line, -1) {
				if p := links.checkTitle("docs/"+m[1], m[2]); p != "" {
					t.Errorf("%s: %s", pos, p)
				}
			}
			if !isMD {
				continue
			}
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				if strings.HasPrefix(target, "#") {
					target = file + target
				} else {
					target = filepath.ToSlash(filepath.Join(filepath.Dir(file), target))
				}
				if strings.HasPrefix(target, "../") {
					t.Errorf("%s: link %s leaves the repository", pos, m[1])
					continue
				}
				if p := links.check(target); p != "" {
					t.Errorf("%s: link %s: %s", pos, m[1], p)
				}
			}
		}
	}
}

func TestCitationProblem(t *testing.T) {
	tests := []struct {
		line string
		bad  bool
	}{
		{"// Events (docs/particle-protocol.md#events).", false},
		{"// Block option value (RFC 7959 " + sectionSign + "2.2).", false},
		{"// CoAP types (RFC 7252 " + sectionSign + "4) and more.", false},
		{"// Events (spec " + sectionSign + "3.7).", true},
		{"// " + sectionSign + "2.1 token endpoint.", true},
		{"// See ../" + "shared/spec/cloud-api.md.", true},
		{"as written in `shared" + "/spec/cloud-api" + ".md`", true},
		{"fuzz seeds and the benchmarks", false},
		{"Section numbers (" + sectionSign + ") are gone", false},
	}
	for _, tt := range tests {
		if got := citationProblem(tt.line) != ""; got != tt.bad {
			t.Errorf("citationProblem(%q) = %v, want %v", tt.line, got, tt.bad)
		}
	}
}

func TestTitleCited(t *testing.T) {
	doc := "# Title\n## 3.3 The session\n### Team invitations\n**G12. Claim codes.** text\n```\n## Hidden\n```\n"
	ts := titles([]byte(doc))
	tests := []struct {
		cited string
		ok    bool
	}{
		{"The session", true},
		{"Team", true},                      // the comment line ended mid-title
		{"Team invitations and more", true}, // the title runs on into prose
		{"Claim codes", true},
		{"Claim", true},
		{"Provisioning", false},
		{"Hidden", false},
	}
	for _, tt := range tests {
		if got := titleCited(ts, tt.cited); got != tt.ok {
			t.Errorf("titleCited(%q) = %v, want %v (titles %q)", tt.cited, got, tt.ok, ts)
		}
	}
}

func TestAnchors(t *testing.T) {
	doc := "# Title\n## Replay: `Last-Event-ID` (beyond Particle)\n```\n# not a heading\n```\n" +
		"### 2.1 What is implemented\n## Notes\n## Notes\n## Ünïcode heading\n"
	got := anchors([]byte(doc))
	for _, want := range []string{"title", "replay-last-event-id-beyond-particle",
		"21-what-is-implemented", "notes", "notes-1", "ünïcode-heading"} {
		if !got[want] {
			t.Errorf("anchors: missing %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("anchors: a heading inside a code block was counted")
	}
}
