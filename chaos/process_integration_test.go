//go:build integration

package chaos

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// runPlanT runs a plan and fails the test when the checker fails; it logs
// the run's table.
func runPlanT(t *testing.T, p *Plan) *Result {
	t.Helper()
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
	return res
}

// TestChaosConsumerKill runs plans/consumer-kill.yaml over NATS
// JetStream: the handlers in a consumer process (the test binary started
// again, see ConsumerMain) SIGKILLed 4 times at seeded times and
// restarted, the dlq counting attempts in Redis (attempts: shared). Lost,
// unexpected, wrongly dead-lettered, attempts mismatches and unexplained
// duplicates must be 0, every poison message stored once with max
// attempts, and the kills must have interrupted deliveries. The chaos
// step of .ci/run runs it.
func TestChaosConsumerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos step of .ci/run runs it (without -short)")
	}
	p, err := LoadPlan("plans/consumer-kill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := runPlanT(t, p)
	kills, ups := 0, 0
	for _, e := range res.Timeline {
		if strings.Contains(e.What, "SIGKILL:") {
			kills++
		}
		if strings.Contains(e.What, "consuming") {
			ups++
		}
	}
	r := res.Report
	if kills != 4 || ups != 4 || r.Interrupted == 0 || r.DeadLettered == 0 || r.Sent != p.Messages {
		t.Errorf("got %d kills, %d restarts, %d interrupted deliveries, %d dead-lettered, %d sent; want 4, 4, > 0, > 0, %d",
			kills, ups, r.Interrupted, r.DeadLettered, r.Sent, p.Messages)
	}
}

// TestChaosConsumerKillRabbitMQ runs the same plan over RabbitMQ quorum
// queues (which count deliveries, so the dlq reads the shared count of a
// redelivery: docs/RELIABILITY.md says why classic queues keep a window).
// Not in .ci/run's budget; TestChaosProcessFaults' companion.
func TestChaosConsumerKillRabbitMQ(t *testing.T) {
	if testing.Short() {
		t.Skip("process faults take minutes; run without -short")
	}
	p, err := LoadPlan("plans/consumer-kill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Transport = "amqp-quorum"
	runPlanT(t, p)
}

// TestChaosOrderedKafka runs plans/ordered-kafka.yaml over the
// in-process Kafka broker, which promises order per key: the checker's
// order check runs end to end (and fails the run on a violation) through
// an outage, a latency spike and an overload. The chaos step of .ci/run
// runs it.
func TestChaosOrderedKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos step of .ci/run runs it (without -short)")
	}
	p, err := LoadPlan("plans/ordered-kafka.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := runPlanT(t, p)
	r := res.Report
	if !r.opts.Ordered || r.OrderChecked == 0 || r.OrderChecked != r.Processed || r.FaultFailures == 0 {
		t.Errorf("ordered %v, checked %d of %d processed, fault failures %d: want the order of every processed message checked under faults",
			r.opts.Ordered, r.OrderChecked, r.Processed, r.FaultFailures)
	}
}

// TestChaosConsumerKillDedup runs plans/consumer-kill-dedup.yaml over
// NATS JetStream: consumer-kill.yaml's SIGKILLs with an idempotent
// consumer (issue 20), the handler committing its side effect with the
// PostgreSQL inbox's done mark. At-least-once deliveries still happen
// (deliveries interrupted by the kills, redelivered), and every processed
// message has exactly one side effect: 0 duplicated side effects. The
// chaos step of .ci/run runs it.
func TestChaosConsumerKillDedup(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos step of .ci/run runs it (without -short)")
	}
	p, err := LoadPlan("plans/consumer-kill-dedup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := runPlanT(t, p)
	r := res.Report
	if r.Interrupted == 0 || r.DupEffects != 0 || r.NoEffect != 0 || r.SideEffects != r.Processed || r.Sent != p.Messages {
		t.Errorf("got %d interrupted deliveries, %d duplicated side effects, %d processed without one, %d side effects for %d processed, %d sent; want > 0, 0, 0, equal, %d",
			r.Interrupted, r.DupEffects, r.NoEffect, r.SideEffects, r.Processed, r.Sent, p.Messages)
	}
}
