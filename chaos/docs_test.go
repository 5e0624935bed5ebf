package chaos

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReliabilityDocStatesThePlans: docs/RELIABILITY.md states the CI and
// the 1M plans' message counts and seeds, and the commands; they must be
// the plans' own.
func TestReliabilityDocStatesThePlans(t *testing.T) {
	doc, err := os.ReadFile("../docs/RELIABILITY.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, tt := range []struct{ plan, command string }{
		{"plans/ci.yaml", "go run ./chaos/cmd/chaos --plan chaos/plans/ci.yaml"},
		{"plans/million.yaml", "go run ./chaos/cmd/chaos --plan chaos/plans/million.yaml"},
	} {
		p, err := LoadPlan(tt.plan)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{tt.command, fmt.Sprintf("seed %d", p.Seed), commas(p.Messages) + " messages"} {
			if !strings.Contains(text, want) {
				t.Errorf("docs/RELIABILITY.md does not state %q (%s)", want, tt.plan)
			}
		}
	}
	// The process-fault plans: each named with its message count.
	for _, plan := range []string{"plans/nats-restart.yaml", "plans/rabbit-restart.yaml", "plans/store-restart.yaml",
		"plans/pg-store-restart.yaml"} {
		p, err := LoadPlan(plan)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("`chaos/%s`: %s messages", plan, commas(p.Messages)); !strings.Contains(text, want) {
			t.Errorf("docs/RELIABILITY.md does not state %q", want)
		}
	}
	st, err := LoadPlan("plans/smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := commas(st.Messages) + " messages over GoChannel"; !strings.Contains(text, want) {
		t.Errorf("docs/RELIABILITY.md does not state %q", want)
	}
}

// commas formats n with thousands separators (50000 -> "50,000").
func commas(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
