//go:build integration

package chaos

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestChaosCIPlan runs plans/ci.yaml (50,000 messages, fixed seed) over
// RabbitMQ and NATS JetStream on loopback: the checker must pass on both.
// The chaos step of .ci/run runs it without -race; under -short (the
// integration step) it is skipped, so CI runs it once.
func TestChaosCIPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos step of .ci/run runs the CI plan (without -short)")
	}
	for _, transport := range []string{"amqp", "nats"} {
		t.Run(transport, func(t *testing.T) {
			p, err := LoadPlan("plans/ci.yaml")
			if err != nil {
				t.Fatal(err)
			}
			p.Transport = transport
			ctx, cancel := context.WithTimeout(context.Background(), p.MaxRun+time.Minute)
			defer cancel()
			var log bytes.Buffer
			res, err := Run(ctx, p, &log)
			if res != nil {
				var out bytes.Buffer
				res.Print(&out)
				t.Logf("%s\n%s", log.String(), out.String())
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Failed() {
				t.Fatal("the checker failed (table above)")
			}
			if res.Report.Sent != 50000 || res.Report.DeadLettered == 0 || res.Report.FaultFailures == 0 {
				t.Errorf("sent %d, dead-lettered %d, fault failures %d: want 50000 sent and faults that bit",
					res.Report.Sent, res.Report.DeadLettered, res.Report.FaultFailures)
			}
		})
	}
}
