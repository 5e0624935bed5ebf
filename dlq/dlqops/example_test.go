package dlqops_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// opsPrintPublisher prints what a replay publishes.
type opsPrintPublisher struct{}

func (opsPrintPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		fmt.Printf("published to %s: %s (replay %s of %s)\n", topic, m.Payload,
			m.Metadata[dlq.KeyReplayCount], m.Metadata[dlq.KeyOriginalUUID])
	}
	return nil
}

func (opsPrintPublisher) Close() error { return nil }

// A Monitor records dead letters in a store, the store groups them by
// failure, and a Replayer sends a group back once the cause is fixed.
func ExampleReplayer() {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	store := dlqops.NewMemStore()
	mon, _ := dlqops.NewMonitor(store, dlqops.WithClock(func() time.Time { return at }))

	for i, order := range []string{"o-17", "o-18"} {
		dl := message.NewMessage(order, []byte(`{"order":"`+order+`"}`))
		dl.Metadata[dlq.KeyOriginalTopic] = "orders"
		dl.Metadata[dlq.KeyHandler] = "ship"
		dl.Metadata[dlq.KeyError] = "warehouse 7 offline"
		dl.Metadata[dlq.KeyFingerprint] = dlq.Fingerprint("*errors.errorString", "warehouse 7 offline")
		dl.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(at.Add(time.Duration(i) * time.Minute))
		_ = mon.Record(ctx, "orders.dlq", dl)
	}
	// a hand-written letter without Levee keys
	_ = mon.Record(ctx, "orders.dlq", message.NewMessage("by-hand", []byte("?")))

	groups, _ := store.Groups(ctx, dlqops.GroupQuery{})
	for _, g := range groups {
		fmt.Printf("group %s: %d letters, topics %v, sample %q\n", g.Key, g.Count, g.Topics, g.SampleError)
	}

	r, _ := dlqops.NewReplayer(store, opsPrintPublisher{}, dlqops.WithReplayRate(0))
	rep, _ := r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{Group: groups[0].Key}})
	fmt.Printf("replayed %d, held %d\n", rep.Replayed, rep.Held)
	rep, _ = r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{Group: groups[0].Key}})
	fmt.Printf("second run replayed %d\n", rep.Replayed)
	// Output:
	// group d68bf72dee30b41c: 2 letters, topics [orders], sample "warehouse 7 offline"
	// group unknown: 1 letters, topics [], sample ""
	// published to orders: {"order":"o-17"} (replay 1 of o-17)
	// published to orders: {"order":"o-18"} (replay 1 of o-18)
	// replayed 2, held 0
	// second run replayed 0
}

// Every constructor takes the one Option type; the shared options (clock,
// logger, meter provider, store timeout) serve several, and an option
// given to a constructor it does not serve is an error, not ignored.
func ExampleOption() {
	store := dlqops.NewMemStore()
	_, err := dlqops.NewMonitor(store, dlqops.WithStoreTimeout(2*time.Second), dlqops.WithMonitorBatchRows(100))
	fmt.Println("monitor:", err)
	_, err = dlqops.NewMonitor(store, dlqops.WithReplayRate(10))
	fmt.Println("monitor:", err)
	_, err = dlqops.NewPruner(store, dlqops.Retention{MaxAge: 720 * time.Hour}, time.Hour, dlqops.WithStoreTimeout(time.Second))
	fmt.Println("pruner:", err)
	// Output:
	// monitor: <nil>
	// monitor: levee/dlqops: invalid configuration: NewMonitor does not take WithReplayRate
	// pruner: levee/dlqops: invalid configuration: NewPruner does not take WithStoreTimeout
}
