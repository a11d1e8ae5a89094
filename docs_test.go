package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// documents are the Markdown files whose links must resolve: the README
// and everything under docs/.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, docs...)
}

// markdownLink matches an inline link or image, [text](target) or
// ![alt](target), with an optional "title" after the target.
var markdownLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)

// fencedBlock matches a fenced code block, whose brackets are not links.
var fencedBlock = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```")

// inlineCode matches a code span.
var inlineCode = regexp.MustCompile("`[^`\n]*`")

// linksIn returns the link targets of a Markdown text, outside code.
func linksIn(text string) []string {
	text = fencedBlock.ReplaceAllString(text, "")
	text = inlineCode.ReplaceAllString(text, "")
	var out []string
	for _, m := range markdownLink.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// headingAnchors returns the anchors GitHub gives a Markdown file's
// headings: lower case, punctuation dropped, spaces to hyphens, and -1, -2
// … appended to repeats.
func headingAnchors(text string) map[string]bool {
	text = fencedBlock.ReplaceAllString(text, "")
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(line, "#")
		if len(trimmed) == len(line) || len(line)-len(trimmed) > 6 || !strings.HasPrefix(trimmed, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(trimmed)) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}

// brokenLinks lists the links of the document at path (text is its
// content) that do not resolve: a missing file, or a missing heading
// anchor in a Markdown file.
func brokenLinks(path, text string, read func(string) (string, error)) []string {
	var broken []string
	for _, target := range linksIn(text) {
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		file, anchor, _ := strings.Cut(target, "#")
		resolved := path
		if file != "" {
			resolved = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
		}
		if _, err := os.Stat(resolved); err != nil {
			broken = append(broken, target+": no such file "+resolved)
			continue
		}
		if anchor == "" {
			continue
		}
		if !strings.HasSuffix(resolved, ".md") {
			broken = append(broken, target+": an anchor into a file that is not Markdown")
			continue
		}
		content, err := read(resolved)
		if err != nil {
			broken = append(broken, target+": "+err.Error())
			continue
		}
		if !headingAnchors(content)[anchor] {
			broken = append(broken, target+": no heading #"+anchor+" in "+resolved)
		}
	}
	return broken
}

func readText(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// TestDocumentLinksResolve checks every relative link and image of the
// README and docs/*.md: the file exists and, for a Markdown file, so does
// the heading an anchor names.
func TestDocumentLinksResolve(t *testing.T) {
	for _, doc := range documents(t) {
		t.Run(doc, func(t *testing.T) {
			text, err := readText(doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(linksIn(text)) == 0 && doc == "README.md" {
				t.Fatal("the README has no links: the link parser is broken")
			}
			for _, b := range brokenLinks(doc, text, readText) {
				t.Errorf("broken link in %s: %s", doc, b)
			}
		})
	}
}

// TestBrokenLinksAreReported feeds the checker links that must fail, so a
// checker that accepts everything cannot pass TestDocumentLinksResolve.
func TestBrokenLinksAreReported(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"missing file", "see [x](docs/no-such-file.md)"},
		{"missing image", "![x](docs/no-such.png)"},
		{"missing anchor in another file", "see [x](docs/architecture.md#no-such-heading)"},
		{"missing anchor in the same file", "# Title\n\nsee [x](#no-such-heading)"},
		{"anchor into a file that is not Markdown", "see [x](deploy/nginx.conf#top)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := brokenLinks("README.md", tc.text, func(p string) (string, error) {
				if p == "README.md" {
					return tc.text, nil
				}
				return readText(p)
			}); len(got) != 1 {
				t.Fatalf("got %q, want one broken link", got)
			}
		})
	}
	t.Run("good links pass", func(t *testing.T) {
		text := "# A Title, with punctuation!\n\n[a](#a-title-with-punctuation) [b](docs/architecture.md#packages) [c](https://example.com/x) `[d](nowhere)`"
		if got := brokenLinks("README.md", text, func(p string) (string, error) {
			if p == "README.md" {
				return text, nil
			}
			return readText(p)
		}); len(got) != 0 {
			t.Fatalf("got %q, want none", got)
		}
	})
}

// envName matches a quoted environment variable name.
var envName = regexp.MustCompile(`"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|PORT)"`)

// envReaders matches the body of a function that takes getenv.
var envReaders = regexp.MustCompile(`(?ms)^func [^\n]*getenv func\(string\) string[^\n]*\{\n.*?^\}\n`)

// TestReadmeConfigurationTable checks that every environment variable the
// production code reads has a row in the README's configuration table.
func TestReadmeConfigurationTable(t *testing.T) {
	readme, err := readText("README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(readme, "## Configuration")
	end := strings.Index(readme, "<!-- END OF CONFIGURATION TABLE -->")
	if start < 0 || end < start {
		t.Fatal("README.md: no configuration section ending in <!-- END OF CONFIGURATION TABLE -->")
	}
	table := readme[start:end]
	read := map[string]string{} // variable -> a file reading it
	err = walkProductionGo(func(path, src string) error {
		// Every name quoted in a function that is handed getenv (FromEnv,
		// run), which also catches names read through a table, and on any
		// line that reads the environment itself.
		for _, body := range envReaders.FindAllString(src, -1) {
			for _, m := range envName.FindAllStringSubmatch(body, -1) {
				read[m[1]] = path
			}
		}
		for _, line := range strings.Split(src, "\n") {
			if !strings.Contains(line, "getenv") && !strings.Contains(line, "Getenv") && !strings.Contains(line, "LookupEnv") {
				continue
			}
			for _, m := range envName.FindAllStringSubmatch(line, -1) {
				read[m[1]] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) < 10 {
		t.Fatalf("found only %d variables read by the code (%v): the scan is broken", len(read), read)
	}
	for name, path := range read {
		if !strings.Contains(table, "`"+name+"`") {
			t.Errorf("%s reads %s, which the README's configuration table does not list", path, name)
		}
	}
}

// TestReadmeStaysAGuide keeps the README short enough to read in ten
// minutes; details belong in docs/.
func TestReadmeStaysAGuide(t *testing.T) {
	text, err := readText("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text, "\n"); n > 300 {
		t.Fatalf("README.md has %d lines; keep it a guide of at most 300 and move details to docs/", n)
	}
}

// repoPath matches a code span naming a file of the repository.
var repoPath = regexp.MustCompile("`((?:main|docs_test)\\.go|(?:server|payment|realtime|static|e2e|bench|deploy|docs)/[\\w./-]*\\.(?:go|js|json|yml|conf|sh|md|html|png))`")

// TestDocumentedFilesExist checks that the files the README and the
// architecture and operations documents name in code spans exist, so the
// documents follow the code when files move.
func TestDocumentedFilesExist(t *testing.T) {
	for _, doc := range []string{"README.md", "docs/architecture.md", "docs/operations.md"} {
		text, err := readText(doc)
		if err != nil {
			t.Fatal(err)
		}
		matches := repoPath.FindAllStringSubmatch(text, -1)
		if len(matches) == 0 && doc != "README.md" {
			t.Errorf("%s names no files: the pattern is broken", doc)
		}
		for _, m := range matches {
			if _, err := os.Stat(m[1]); err != nil {
				t.Errorf("%s names %s, which does not exist", doc, m[1])
			}
		}
	}
}

// diagramStep matches a line of an architecture diagram that names where a
// step happens and the function doing it: "payment/service.go  Service.Transition"
// or "realtime/socketio  Namespace.Broadcast".
var diagramStep = regexp.MustCompile(`((?:server|payment|realtime)(?:/[\w.]+)*)\s{2,}([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\b`)

// TestArchitectureDiagramMatchesCode checks each step of the diagrams in
// docs/architecture.md that names a file or package and a function: the
// file or package exists and declares that function or method.
func TestArchitectureDiagramMatchesCode(t *testing.T) {
	text, err := readText("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, block := range fencedBlock.FindAllString(text, -1) {
		for _, m := range diagramStep.FindAllStringSubmatch(block, -1) {
			where, symbol := m[1], m[2]
			steps++
			var files []string
			if strings.HasSuffix(where, ".go") {
				files = []string{where}
			} else if files, err = filepath.Glob(filepath.Join(where, "*.go")); err != nil || len(files) == 0 {
				t.Errorf("diagram step %q: no Go files in %s", m[0], where)
				continue
			}
			typ, fn, isMethod := strings.Cut(symbol, ".")
			if !isMethod {
				fn, typ = typ, `\w+`
			}
			decl := regexp.MustCompile(`(?m)^func (?:\(\w+ \*?` + typ + `\) )?` + regexp.QuoteMeta(fn) + `\(`)
			if !isMethod {
				decl = regexp.MustCompile(`(?m)^func (?:\(\w+ \*?\w+\) )?` + regexp.QuoteMeta(fn) + `\(`)
			}
			found := false
			for _, f := range files {
				if strings.HasSuffix(f, "_test.go") {
					continue
				}
				src, err := readText(f)
				if err != nil {
					t.Errorf("diagram step %q: %v", m[0], err)
					break
				}
				if decl.MatchString(src) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("diagram step %q: %s declares no %s", m[0], where, symbol)
			}
		}
	}
	if steps < 5 {
		t.Fatalf("found %d diagram steps naming code; the pattern is broken", steps)
	}
}

// measurementComment matches a comment line that quotes a measurement: a
// percentile, a range of figures with a unit, a percentage, or the words a
// benchmark result is told in. Defaults ("Default 50 ms", "(64 KiB)") are
// contracts and do not match.
var measurementComment = regexp.MustCompile(`(?i)^\s*//.*(\bp\d\d\b|\d[\d.,]*\s*[–-]\s*\d[\d.,]*\s*(ms|µs|ns|s|%|KiB|MiB|MB|KB)\b|\d\s*%|\bbenchmark\b|\bmedian\b|\binterleaved\b|\bprofile (showed|of)\b|\bmeasured\b|\ba (tenth|twentieth|third|quarter) of\b)`)

// TestCommentsStateContracts checks that no comment in the production Go
// code quotes a measurement: comments say what must hold and why, and the
// figures behind a choice live in docs/performance.md.
func TestCommentsStateContracts(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"// receipt p99 was 0.53–0.86 ms at 50 ms", true},
		{"// 16 % of the server's time", true},
		{"// a CPU profile of the benchmark showed", true},
		{"// Every is the time between checkpoint passes. Default 50 ms.", false},
		{"// BodyLimit bounds request bodies in bytes (64 KiB).", false},
	} {
		if got := measurementComment.MatchString(tc.line); got != tc.want {
			t.Fatalf("the pattern says %v for %q, want %v", got, tc.line, tc.want)
		}
	}
	checked := 0
	err := walkProductionGo(func(path, src string) error {
		checked++
		for i, line := range strings.Split(src, "\n") {
			if measurementComment.MatchString(line) {
				t.Errorf("%s:%d quotes a measurement; state the contract and move the figure to docs/performance.md:\n\t%s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files: the walk is broken", checked)
	}
}

// walkProductionGo calls fn with the path and text of every production Go
// file of the server: no tests, and nothing under bench, e2e or testdata.
func walkProductionGo(fn func(path, src string) error) error {
	return filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "bench", "e2e", ".git", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := readText(path)
		if err != nil {
			return err
		}
		return fn(path, src)
	})
}
