//go:build integration

package chaos

import (
	"bytes"
	"context"
	"strings"
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

// TestChaosProcessFaults runs the plans that stop and SIGKILL private
// servers the run starts and owns (never the shared ones): a nats-server
// broker (plans/nats-restart.yaml), a RabbitMQ node
// (plans/rabbit-restart.yaml), a redis-server DLQ store
// (plans/store-restart.yaml) and a PostgreSQL DLQ store
// (plans/pg-store-restart.yaml). Not part of .ci/run's time budget; run it
// with go test -tags integration -run TestChaosProcessFaults ./chaos/.
func TestChaosProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("process faults take minutes; run without -short")
	}
	for _, plan := range []string{"plans/nats-restart.yaml", "plans/rabbit-restart.yaml", "plans/store-restart.yaml",
		"plans/pg-store-restart.yaml"} {
		t.Run(plan, func(t *testing.T) {
			p, err := LoadPlan(plan)
			if err != nil {
				t.Fatal(err)
			}
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
			down := 0
			for _, e := range res.Timeline {
				if strings.Contains(e.What, " down (") {
					down++
				}
			}
			if down != 2 {
				t.Errorf("got %d server stops in the timeline, want 2 (a clean stop and a SIGKILL)", down)
			}
		})
	}
}
