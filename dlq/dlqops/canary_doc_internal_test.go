package dlqops

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestConsoleDocStatesTheCanaryBounds: docs/CONSOLE.md states the canary's
// look-back for clock skew and the letters one query of a poll reads.
func TestConsoleDocStatesTheCanaryBounds(t *testing.T) {
	b, err := os.ReadFile("../../docs/CONSOLE.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	if canaryLookup != 10000 || canarySkew != time.Minute {
		t.Fatalf("canaryLookup %d, canarySkew %s: update docs/CONSOLE.md", canaryLookup, canarySkew)
	}
	for _, want := range []string{"10,000 letters at a time (oldest first), on to the newest", "(a minute earlier, for clock skew between hosts)"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/CONSOLE.md does not say %q", want)
		}
	}
	ops, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	waves := strings.Trim(strings.Join(strings.Fields(strings.Trim(fmt.Sprint(DefaultCanaryWaves()), "[]")), ", "), " ")
	if want := "sends waves of " + waves + " letters"; !strings.Contains(strings.Join(strings.Fields(string(ops)), " "), want) {
		t.Errorf("docs/OPERATIONS.md does not say %q", want)
	}
}

// TestOperationsDocStatesTheMarkBound: docs/OPERATIONS.md states how long
// a replay tries again to mark a published letter.
func TestOperationsDocStatesTheMarkBound(t *testing.T) {
	ops, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("longer than the %d s the mark is tried again for", int(finishTimeout.Seconds()))
	if !strings.Contains(strings.Join(strings.Fields(string(ops)), " "), want) {
		t.Errorf("docs/OPERATIONS.md does not say %q", want)
	}
}
