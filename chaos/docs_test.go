package chaos

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
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
		"plans/pg-store-restart.yaml", "plans/consumer-kill.yaml", "plans/ordered-kafka.yaml"} {
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

// TestReliabilityDocConsumerKill: the consumer-kill section states the
// plan's seed, kills, rate and the ordered plan's keys and warmup, and its
// pasted table adds up: the fates sum to the messages sent, processed,
// dead-lettered and exhausted by faults make every message, and the
// interruptions listed per kill (one per kill) sum to the table's row.
func TestReliabilityDocConsumerKill(t *testing.T) {
	doc, err := os.ReadFile("../docs/RELIABILITY.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	p, err := LoadPlan("plans/consumer-kill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kill Fault
	for _, f := range p.Faults {
		if f.Kind == FaultConsumerKill {
			kill = f
		}
	}
	o, err := LoadPlan("plans/ordered-kafka.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("seed %d, the store", p.Seed), fmt.Sprintf("SIGKILLed %d times", kill.Count),
		fmt.Sprintf("%s per second", commas(int(p.Rate))), fmt.Sprintf("ack deadline %s", p.AckDeadline),
		fmt.Sprintf("modulo %d", o.OrderKeys), fmt.Sprintf("waits %s", o.Warmup),
		fmt.Sprintf("chaos run: %d messages over nats, seed %d", p.Messages, p.Seed),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/RELIABILITY.md does not state %q", want)
		}
	}
	sec := text[strings.Index(text, "## The consumer killed"):strings.Index(text, "## Order per key")]
	num := func(re string) int {
		m := regexp.MustCompile(re).FindStringSubmatch(sec)
		if m == nil {
			t.Fatalf("the consumer-kill section has no %s", re)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	sent := num(`sent (\d+) \(`)
	fates := 0
	for _, m := range regexp.MustCompile(`(?:healthy|transient|poison|permanent|validation|panic|forged) (\d+)`).FindAllStringSubmatch(
		sec[strings.Index(sec, "sent "):], 7) {
		n, _ := strconv.Atoi(m[1])
		fates += n
	}
	processed, dead := num(`processed \(good, acked after a success\)\s+(\d+)`), num(`dead-lettered \(bad, stored once per generation\)\s+(\d+)`)
	exhausted := num(`exhausted by injected faults \(max_attempts real failures\)\s+(\d+)`)
	if sent != p.Messages || fates != sent || processed+dead+exhausted != sent {
		t.Errorf("table: sent %d (fates sum %d), processed %d + dead-lettered %d + exhausted by faults %d; want %d each",
			sent, fates, processed, dead, exhausted, p.Messages)
	}
	m := regexp.MustCompile(`The kills interrupted ([\d, and]+) deliveries`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatal("the section does not list the deliveries each kill interrupted")
	}
	var per []int
	for _, f := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ' ' }) {
		if n, err := strconv.Atoi(f); err == nil {
			per = append(per, n)
		}
	}
	total := 0
	for _, n := range per {
		total += n
	}
	if got := num(`deliveries interrupted by a consumer kill\s+(\d+)`); len(per) != kill.Count || total != got {
		t.Errorf("interruptions per kill %v (sum %d), table %d, kills %d: want one per kill summing to the table", per, total, got, kill.Count)
	}
}
