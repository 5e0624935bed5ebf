package archtest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/levee-dev/levee/middleware"
)

// slotMention is a doc's "slot N" for a concern, computed from the Slot
// constants, so that adding a slot (dedup moved every later one by one)
// fails here until the docs say the new numbers.
type slotMention struct {
	file   string
	format string // with one %d per slot, in order
	slots  []int  // 1-based positions in the canonical order
}

func pos(s middleware.Slot) int { return int(s) + 1 }

// handlerPos is the user's handler's position: after every slot.
var handlerPos = len(middleware.Slots()) + 1

var slotMentions = []slotMention{
	{"ratelimit/doc.go", "ratelimit is slot %d:", []int{pos(middleware.SlotRateLimit)}},
	{"priority/doc.go", "slot %d (middleware.SlotPriority)", []int{pos(middleware.SlotPriority)}},
	{"breaker/doc.go", "slot %d of Levee's canonical order", []int{pos(middleware.SlotBreaker)}},
	{"breaker/doc.go", "slot %d (middleware.SlotRateLimit", []int{pos(middleware.SlotRateLimit)}},
	{"batch/doc.go", `(slot %d, "the`, []int{handlerPos}},
	{"docs/BATCH.md", "wraps the Batcher (it is slot %d)", []int{handlerPos}},
	{"docs/RATELIMIT.md", "slot %d of the canonical order", []int{pos(middleware.SlotRateLimit)}},
	{"docs/TELEMETRY.md", "(slot %d), one per delivery", []int{pos(middleware.SlotTracing)}},
	{"docs/BENCHMARKS.md", "tracing (slot %d) and metrics (slot %d)", []int{pos(middleware.SlotTracing), pos(middleware.SlotMetrics)}},
	{"docs/ARCHITECTURE.md", "fleet breaker in slot %d and the fleet rate limit in slot %d,", []int{pos(middleware.SlotBreaker), pos(middleware.SlotRateLimit)}},
}

var slotNumber = regexp.MustCompile(`(?i)\bslot \d+\b`)

// TestDocsStateTheSlots: every "slot N" in the docs (README, docs/, every
// doc.go) is one of slotMentions, and says the number the Slot constants
// give.
func TestDocsStateTheSlots(t *testing.T) {
	root := filepath.Join("..", "..")
	texts := map[string]string{} // file -> text with line breaks and comment markers folded
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() || !(d.Name() == "doc.go" || strings.HasSuffix(rel, ".md")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		texts[filepath.ToSlash(rel)] = fold(string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, m := range slotMentions {
		args := make([]any, len(m.slots))
		for i, s := range m.slots {
			args[i] = s
		}
		phrase := fmt.Sprintf(m.format, args...)
		if !strings.Contains(texts[m.file], phrase) {
			t.Errorf("%s: want %q (the Slot constants' numbers)", m.file, phrase)
		}
		want[m.file] += len(m.slots)
	}
	for file, text := range texts {
		if got := len(slotNumber.FindAllString(text, -1)); got != want[file] {
			t.Errorf("%s: %d mentions of a slot number, %d checked here: add each to slotMentions", file, got, want[file])
		}
	}
}

// fold joins a text's lines with single spaces and drops Go comment
// markers, so a phrase wrapped across lines still matches.
func fold(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimSpace(strings.TrimPrefix(line, "//"))
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(line)
	}
	return b.String()
}

// TestReadmeStatesTheOrder: the README's "canonical order, outermost
// first" lists every slot, in the Slot constants' order, then the handler
// (a parenthesis after a slot's name is a note).
func TestReadmeStatesTheOrder(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`The canonical order, outermost first: (.*?), handler\.`).FindStringSubmatch(fold(string(b)))
	if m == nil {
		t.Fatal(`README.md no longer says "The canonical order, outermost first: ..., handler.": update this test`)
	}
	var got []string
	for _, name := range strings.Split(regexp.MustCompile(`\s*\([^)]*\)`).ReplaceAllString(m[1], ""), ", ") {
		got = append(got, strings.TrimSpace(name))
	}
	var want []string
	for _, s := range middleware.Slots() {
		want = append(want, s.String())
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("README.md's canonical order: got %q, want %q (middleware.Slots)", got, want)
	}
}
