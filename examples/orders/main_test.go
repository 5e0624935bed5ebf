package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/levee-dev/levee/internal/testkit"
)

// Sarama (under watermill-kafka) starts one process-wide go-metrics
// ticker that nothing can stop; every other goroutine must be gone.
func TestMain(m *testing.M) {
	testkit.VerifyMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func testOptions() options {
	return options{orders: 60, rate: 0, vipShare: 0.1, limit: 200000, service: time.Millisecond, outageAfter: time.Hour, maxRun: 30 * time.Second, seed: 1, duplicates: 10}
}

// The demo runs to completion on GoChannel and reports every handler.
func TestRunReports(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), testOptions(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, want := range []string{"60 orders", "payments", "inventory", "notifications", "priority 9", "SMS sent: 60",
		"inventory dedup: 6 duplicates dropped without running the handler (6 reserve requests published twice)"} {
		if !strings.Contains(report, want) {
			t.Fatalf("report lacks %q:\n%s", want, report)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	o := testOptions()
	o.vipShare = 2
	if err := run(context.Background(), o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "invalid flags") {
		t.Fatalf("got %v, want an invalid flags error", err)
	}
}

// The shipped levee.yaml is valid and loads from disk as well as embedded.
func TestConfigFileMatchesEmbedded(t *testing.T) {
	disk, err := os.ReadFile("levee.yaml")
	if err != nil {
		t.Fatal(err)
	}
	emb, err := embedded.ReadFile("levee.yaml")
	if err != nil || !bytes.Equal(disk, emb) {
		t.Fatalf("embedded config differs from levee.yaml (%v)", err)
	}
	if _, err := loadConfig(""); err != nil {
		t.Fatalf("embedded config: %v", err)
	}
	cfg, err := loadConfig("levee.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range handlerNames {
		if cfg.Handler(h) == nil {
			t.Fatalf("levee.yaml does not configure %s", h)
		}
	}
}

// An outage pauses payments (the breaker opens, no redelivery storm) and
// every order is still processed after recovery.
func TestRunOutagePausesPayments(t *testing.T) {
	o := testOptions()
	o.orders, o.rate = 100, 100
	o.outage, o.outageAfter = 1500*time.Millisecond, 200*time.Millisecond
	var out bytes.Buffer
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	if !strings.Contains(report, "open") || !strings.Contains(report, "closed") {
		t.Fatalf("report does not show the breaker opening and closing:\n%s", report)
	}
	var processed, failed, calls int
	for _, line := range strings.Split(report, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "payments" && f[1][0] >= '0' && f[1][0] <= '9' {
			var name, retried, dead string
			if _, err := fmt.Sscan(line, &name, &processed, &failed, &retried, &dead, &calls); err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
		}
	}
	if processed != 100 {
		t.Fatalf("payments processed %d, want 100:\n%s", processed, report)
	}
	// Without the breaker every failed call is redelivered at once: tens of
	// thousands of calls. With it: the trip, a probe per open_for, and the
	// messages in flight when it tripped.
	if calls > 100+30 {
		t.Fatalf("payments handled %d calls for 100 orders: a redelivery storm\n%s", calls, report)
	}
}

// Dead letters are grouped in the store, and -replay-fixed replays the
// over-limit group after lifting the limit: every replayed order is paid.
func TestRunReplayFixed(t *testing.T) {
	o := testOptions()
	o.malformed, o.badPhones, o.big, o.limit, o.replayFixed = 3, 2, 3, 200000, true
	var out bytes.Buffer
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, want := range []string{
		"exceeds the gateway limit",
		"validation payments",
		"validation sms",
		"3 replayed at 50/s",
		"payments processed 3 of them",
		"new 0   replayed 3",
	} {
		if !strings.Contains(report, want) {
			t.Fatalf("report lacks %q:\n%s", want, report)
		}
	}
}

func TestRunRejectsUnknownStore(t *testing.T) {
	o := testOptions()
	o.store = "mongo"
	if err := run(context.Background(), o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `-store "mongo"`) {
		t.Fatalf("got %v, want a -store error", err)
	}
}
