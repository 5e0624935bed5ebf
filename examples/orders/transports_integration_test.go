//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
			for _, want := range []string{"orders demo over " + kind, "exceeds the gateway limit", "validation payments", "validation sms"} {
				if !strings.Contains(report, want) {
					t.Fatalf("report lacks %q:\n%s", want, report)
				}
			}
		})
	}
}
