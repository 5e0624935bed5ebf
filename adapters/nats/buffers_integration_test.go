//go:build integration

package nats_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/levee-dev/levee/adapters/nats"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestSubscriptionsHoldSmallQueues: each subscription's pull consumer
// has a queue between the socket and its workers, which nats.go makes
// 65,536 messages long (512 KiB of heap), though each worker fetches one
// message at a time: a service of 40 handlers with a store (80
// subscriptions) held 46 MB idle. Levee sizes it to the workers
// (subQueueLen in nats.go).
func TestSubscriptionsHoldSmallQueues(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.NATSURL())
	heap := brokertest.HeapInUse
	const subs = 20
	tr, err := nats.New(context.Background(), nats.Config{URL: brokertest.NATSURL()},
		transport.Settings{Concurrency: 2, ConsumerGroup: "g" + watermill.NewShortUUID()})
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for i := range subs {
		topics = append(topics, fmt.Sprintf("%s_%d", brokertest.Name("queues"), i))
	}
	defer func() { _ = tr.DeleteTopics(context.Background(), topics); _ = tr.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := heap()
	for _, topic := range topics {
		if _, err := tr.Subscriber.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	perSub := (heap() - before) / subs
	t.Logf("%d KiB of heap per subscription", perSub>>10)
	if perSub > 128<<10 {
		t.Errorf("%d KiB of heap per subscription, want at most 128 KiB", perSub>>10)
	}
}
