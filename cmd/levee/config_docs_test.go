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
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "schemas"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schemas", "order.json"), []byte(`{"type": "object"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	handlerSection := regexp.MustCompile(`^(breaker|ratelimit|dlq|dedup|priority|batch|tracing|timeout):`)
	checked := 0
	for _, doc := range append([]string{"../../README.md"}, docs...) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatchIndex(data, -1) {
			body := string(data[m[2]:m[3]])
			line := bytes.Count(data[:m[2]], []byte("\n")) + 1
			if handlerSection.MatchString(body) {
				body = "handlers:\n  h:\n" + indent(body, "    ")
			}
			path := filepath.Join(dir, fmt.Sprintf("%s_%d.yaml", filepath.Base(doc), line))
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"config", "check", path}, &out, &errb); code != 0 {
				t.Errorf("%s:%d: the yaml block fails config check (exit %d):\n%s", doc, line, code, errb.String())
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d yaml blocks; the docs have more", checked)
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
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	harness, err := os.ReadFile("docsnippets_test.go")
	if err != nil {
		t.Fatal(err)
	}
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
	code := squeeze(string(harness))
	block := regexp.MustCompile("(?s)```go\n(.*?)```")
	checked := 0
	for _, doc := range append([]string{"../../README.md"}, docs...) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatchIndex(data, -1) {
			line := bytes.Count(data[:m[2]], []byte("\n")) + 1
			for _, piece := range regexp.MustCompile(`(?m)^\s*\.\.\.\s*$`).Split(string(data[m[2]:m[3]]), -1) {
				if p := squeeze(piece); p != "" && !strings.Contains(code, p) {
					t.Errorf("%s:%d: this part of the go block is not in docsnippets_test.go, so nothing compiles it: copy it there, into a function that declares what it uses:\n%s", doc, line, piece)
				}
			}
			checked++
		}
	}
	if checked < 8 {
		t.Fatalf("checked %d go blocks; the docs have more", checked)
	}
}
