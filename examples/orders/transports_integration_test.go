//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The demo runs to completion over every transport on loopback, with
// the same report: every order paid or dead-lettered, nothing lost.
func TestRunOnEveryTransport(t *testing.T) {
	for _, kind := range []string{"amqp", "kafka", "nats", "redis", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			o := testOptions()
			o.transport = kind
			o.malformed, o.badPhones, o.big = 3, 2, 2
			var out bytes.Buffer
			if err := run(context.Background(), o, &out); err != nil {
				t.Fatalf("run over %s: %v\n%s", kind, err, out.String())
			}
			report := out.String()
			// The run removes what it created on the broker (-keep keeps it).
			removed := "removed this run's 8 topics from " + kind
			for _, want := range []string{"orders demo over " + kind, "exceeds the gateway limit", "validation payments", "validation sms", removed} {
				if !strings.Contains(report, want) {
					t.Fatalf("report lacks %q:\n%s", want, report)
				}
			}
		})
	}
}

// A payment outage over a real broker: the breaker pauses consumption, so
// the broker sees no redelivery storm, and every order is paid after
// recovery. Deliveries are counted at the router: without the breaker
// each failed call is a Nack and an immediate redelivery.
func TestOutageOnBrokers(t *testing.T) {
	for _, kind := range []string{"amqp", "nats"} {
		t.Run(kind, func(t *testing.T) {
			o := testOptions()
			o.transport = kind
			o.orders, o.rate = 100, 100
			o.malformed, o.badPhones, o.big = 0, 0, 0
			o.outage, o.outageAfter = 1500*time.Millisecond, 200*time.Millisecond
			var out bytes.Buffer
			if err := run(context.Background(), o, &out); err != nil {
				t.Fatalf("run over %s: %v\n%s", kind, err, out.String())
			}
			report := out.String()
			processed, deliveries, nacked := paymentsRow(t, report)
			if processed != 100 {
				t.Fatalf("payments processed %d of 100 over %s:\n%s", processed, kind, report)
			}
			if deliveries > 100+30 || nacked > 30 {
				t.Fatalf("payments got %d deliveries (%d nacked) for 100 orders over %s: a redelivery storm\n%s", deliveries, nacked, kind, report)
			}
			if !strings.Contains(report, "open") {
				t.Fatalf("the breaker never opened:\n%s", report)
			}
		})
	}
}

// paymentsRow parses the payments row of the report.
func paymentsRow(t *testing.T, report string) (processed, deliveries, nacked int) {
	t.Helper()
	for _, line := range strings.Split(report, "\n") {
		f := strings.Fields(line)
		if len(f) >= 7 && f[0] == "payments" && f[1][0] >= '0' && f[1][0] <= '9' {
			var dead, attempts, failed int
			if _, err := fmt.Sscan(strings.Join(f[1:7], " "), &processed, &dead, &attempts, &failed, &deliveries, &nacked); err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return
		}
	}
	t.Fatalf("no payments row in:\n%s", report)
	return
}
