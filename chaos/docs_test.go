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

// TestReliabilityDocDedup: the dedup section states the plan's messages,
// rate and seed, and its pasted table adds up: processed and
// dead-lettered make every message sent, one side effect per processed
// message, 0 duplicated side effects, and the interruptions and dedup
// counters the text cites are the table's.
func TestReliabilityDocDedup(t *testing.T) {
	doc, err := os.ReadFile("../docs/RELIABILITY.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	p, err := LoadPlan("plans/consumer-kill-dedup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Dedup {
		t.Fatal("plans/consumer-kill-dedup.yaml: dedup is off")
	}
	sec := text[strings.Index(text, "## Idempotent consumers under SIGKILL"):strings.Index(text, "## Order per key")]
	for _, want := range []string{
		fmt.Sprintf("`chaos/plans/consumer-kill-dedup.yaml`: %s messages at %s per second", commas(p.Messages), commas(int(p.Rate))),
		fmt.Sprintf("seed %d", p.Seed), fmt.Sprintf("chaos run: %d messages over nats, seed %d", p.Messages, p.Seed),
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("the dedup section does not state %q", want)
		}
	}
	num := func(re string) int {
		m := regexp.MustCompile(re).FindStringSubmatch(sec)
		if m == nil {
			t.Fatalf("the dedup section has no %s", re)
		}
		n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
		return n
	}
	sent := num(`sent (\d+) \(`)
	processed, dead := num(`processed \(good, acked after a success\)\s+(\d+)`), num(`dead-lettered \(bad, stored once per generation\)\s+(\d+)`)
	effects, dups := num(`side effects committed \(rows, handler "chaos"\)\s+(\d+)`), num(`duplicated side effects \(committed twice\)\s+(\d+)`)
	if sent != p.Messages || processed+dead != sent || effects != processed || dups != 0 {
		t.Errorf("table: sent %d, processed %d + dead-lettered %d, side effects %d, duplicated %d; want %d, a sum of %d, %d, 0",
			sent, processed, dead, effects, dups, p.Messages, p.Messages, processed)
	}
	once := num(`1 deliveries: (\d+)`)
	for _, c := range []struct{ text, table string }{
		{`The kills interrupted (\d+) deliveries`, `deliveries interrupted by a consumer kill\s+(\d+)`},
		{`(\d+) redeliveries were acked as duplicates`, `levee\.dedup\.duplicates\s+(\d+)`},
		{`and (\d+) claims that a killed process held`, `levee\.dedup\.lease\.expiries\s+(\d+)`},
	} {
		if a, b := num(c.text), num(c.table); a != b {
			t.Errorf("the text says %d (%s), the table %d", a, c.text, b)
		}
	}
	if more := num(`per message: ([\d,]+) of`); more != sent-once {
		t.Errorf("the text says %d messages delivered more than once, the table %d", more, sent-once)
	}
}
