package chaos

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRunSmokePlan runs plans/smoke.yaml over GoChannel: every fate, two
// outages (shorter and longer than the breaker's max hold), a latency
// spike past the timeout, an overload, a stalled store and a replay. The
// checker must pass, and the faults must have bitten.
func TestRunSmokePlan(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack for a few seconds")
	}
	p, err := LoadPlan("plans/smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log bytes.Buffer
	res, err := Run(ctx, p, &log)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	var out bytes.Buffer
	res.Print(&out)
	if res.Failed() {
		t.Fatalf("the run failed:\n%s", out.String())
	}
	r := res.Report
	checks := []struct {
		name string
		got  int64
	}{
		{"sent", int64(r.Sent)},
		{"processed", int64(r.Processed)},
		{"dead-lettered", int64(r.DeadLettered)},
		{"replays", int64(r.Replays)},
		{"handler calls failed by faults", int64(r.FaultFailures)},
		{"deferrals", res.Counters["levee.dlq.deferrals"]},
		{"breaker transitions", res.Counters["levee.breaker.transitions"]},
		{"spans", res.Spans},
	}
	for _, c := range checks {
		if c.got <= 0 {
			t.Errorf("%s: got %d, want > 0\n%s", c.name, c.got, out.String())
		}
	}
	if r.Sent != p.Messages {
		t.Errorf("sent %d, want %d", r.Sent, p.Messages)
	}
	for _, want := range []string{"outage begins", "latency begins", "overload begins", "store_stall begins", "replay ends"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("timeline lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParsePlan(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"ok", "messages: 10\nstack: s.yaml\nfates: {healthy: 1}\n", ""},
		{"unknown key", "messages: 10\nstack: s.yaml\nfates: {healthy: 1}\nbogus: 1\n", "bogus"},
		{"no messages", "stack: s.yaml\nfates: {healthy: 1}\n", "messages must be > 0"},
		{"unknown fate", "messages: 1\nstack: s.yaml\nfates: {zombie: 1}\n", "unknown fate"},
		{"unknown transport", "messages: 1\nstack: s.yaml\nfates: {healthy: 1}\ntransport: carrier-pigeon\n", "transport"},
		{"broker restart on the shared broker", "messages: 1\nstack: s.yaml\nfates: {healthy: 1}\ntransport: nats\n" +
			"faults: [{kind: broker_restart, start: 1s, duration: 1s}]\n", "private_broker"},
		{"latency without delay", "messages: 1\nstack: s.yaml\nfates: {healthy: 1}\nfaults: [{kind: latency, start: 1s, duration: 1s}]\n", "delay"},
		{"consumer kill without a consumer process", "messages: 1\nstack: s.yaml\nfates: {healthy: 1}\ntransport: nats\n" +
			"faults: [{kind: consumer_kill, start: 1s, duration: 1s}]\n", "consumer_process"},
		{"consumer process over gochannel", "messages: 1\nstack: s.yaml\nfates: {healthy: 1}\nconsumer_process: true\n", "gochannel"},
		{"order keys with a batch share", "messages: 1\nstack: s.yaml\nfates: {healthy: 1}\norder_keys: 4\nbatch_share: 0.1\n", "batch_share 0"},
		{"fault without duration", "messages: 1\nstack: s.yaml\nfates: {healthy: 1}\nfaults: [{kind: outage, start: 1s}]\n", "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePlan([]byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if p.Seed != 1 || p.Transport != "gochannel" || p.Store != "memory" {
					t.Errorf("defaults: got seed %d transport %s store %s", p.Seed, p.Transport, p.Store)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an ErrPlan naming %q", err, tt.wantErr)
			}
		})
	}
}

// TestFatesAreSeeded: the same seed draws the same fates.
func TestFatesAreSeeded(t *testing.T) {
	mix := Mix{Healthy: 0.5, Transient: 0.2, Poison: 0.1, Forged: 0.2}
	draw := func(seed uint64) []Fate {
		a, err := newAssigner(seed, mix, testMax)
		if err != nil {
			t.Fatal(err)
		}
		var out []Fate
		for range 1000 {
			out = append(out, a.next())
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	same := func(x, y []Fate) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("seed 7 drew different fates twice")
	}
	if same(a, c) {
		t.Error("seeds 7 and 8 drew the same fates")
	}
	counts := map[Kind]int{}
	for _, f := range a {
		counts[f.Kind]++
		if (f.Kind == Transient || f.Kind == Forged) && (f.K < 2 || f.K > testMax) {
			t.Errorf("k = %d outside 2..%d", f.K, testMax)
		}
	}
	if counts[Healthy] < 400 || counts[Healthy] > 600 || counts[Permanent] != 0 {
		t.Errorf("fate counts %v do not follow the mix %v", counts, mix)
	}
}
