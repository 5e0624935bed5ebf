package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every levee.yaml block of the README and docs/ passes `levee config
// check` as written: a reader copies them. A block that is one handler
// section (breaker:, ratelimit:, ...) is checked under a handler.
func TestDocsYAMLBlocksPassConfigCheck(t *testing.T) {
	t.Setenv("CONSOLE_ALICE_PASSWORD", "correct horse")
	t.Setenv("CONSOLE_ONCALL_PASSWORD", "battery staple")
	t.Setenv("CONSOLE_TOKEN", "0123456789abcdefgh")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "schemas"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schemas", "order.json"), []byte(`{"type": "object"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	handlerSection := regexp.MustCompile(`^(breaker|ratelimit|dlq|dedup|priority|batch|tracing|timeout):`)
	blocks := docBlocks(t, "yaml")
	for _, b := range blocks {
		body := b.body
		if handlerSection.MatchString(body) {
			body = "handlers:\n  h:\n" + indent(body, "    ")
		}
		path := filepath.Join(dir, fmt.Sprintf("%s_%d.yaml", filepath.Base(b.doc), b.line))
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := run([]string{"config", "check", path}, &out, &errb); code != 0 {
			t.Errorf("%s:%d: the yaml block fails config check (exit %d):\n%s", b.doc, b.line, code, errb.String())
		}
	}
	if len(blocks) < 10 {
		t.Fatalf("checked %d yaml blocks; the docs have more", len(blocks))
	}
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// Every Go block of the README and docs/ compiles against the current API:
// each is found, as written, in docsnippets_test.go, which the compiler
// checks with the package's tests. Whitespace is not compared (gofmt
// realigns comments), and a line "..." in a block is a gap.
func TestDocsGoBlocksCompile(t *testing.T) {
	harness, err := os.ReadFile("docsnippets_test.go")
	if err != nil {
		t.Fatal(err)
	}
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
	code := squeeze(string(harness))
	blocks := docBlocks(t, "go")
	for _, b := range blocks {
		for _, piece := range regexp.MustCompile(`(?m)^\s*\.\.\.\s*$`).Split(b.body, -1) {
			if p := squeeze(piece); p != "" && !strings.Contains(code, p) {
				t.Errorf("%s:%d: this part of the go block is not in docsnippets_test.go, so nothing compiles it: copy it there, into a function that declares what it uses:\n%s", b.doc, b.line, piece)
			}
		}
	}
	if len(blocks) < 8 {
		t.Fatalf("checked %d go blocks; the docs have more", len(blocks))
	}
}

// docBlock is a fenced code block of a doc: its file, the line its body
// starts on, and its body.
type docBlock struct {
	doc  string
	line int
	body string
}

// docBlocks returns the README's and docs/'s fenced blocks of lang.
func docBlocks(t *testing.T, lang string) []docBlock {
	t.Helper()
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []docBlock
	for _, doc := range append([]string{"../../README.md"}, docs...) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatchIndex(data, -1) {
			out = append(out, docBlock{doc: doc, line: bytes.Count(data[:m[2]], []byte("\n")) + 1, body: string(data[m[2]:m[3]])})
		}
	}
	return out
}
