package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

func testOptions() options {
	return options{orders: 60, vipShare: 0.1, service: time.Millisecond, outageAfter: time.Hour, maxRun: 30 * time.Second, seed: 1}
}

// The demo runs to completion on GoChannel and reports every handler.
func TestRunReports(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), testOptions(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, want := range []string{"orders demo: 60 orders", "payments", "inventory", "notifications", "priority 9", "SMS sent: 60"} {
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
	if !bytes.Equal(disk, defaultConfig) {
		t.Fatal("embedded config differs from levee.yaml")
	}
	cfg, err := loadConfig("levee.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"payments", "inventory", "notifications"} {
		if _, ok := cfg.Handlers[h]; !ok {
			t.Fatalf("levee.yaml does not configure %s", h)
		}
	}
}
