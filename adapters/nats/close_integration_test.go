//go:build integration

package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/nats"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestNATSCloseSettlesHeldMessages: a subscription that closes while its
// handler holds a message (as Levee's stack does in an open breaker or a
// priority queue) ends the message's context and settles what the
// handler then does: a Nacked message reaches another consumer of the
// group at once, not after AckWait (30 s here; before, it came back only
// then), and a message whose handler finished is acked, not run again.
func TestNATSCloseSettlesHeldMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set := transport.Settings{Concurrency: 2, ConsumerGroup: "close-" + watermill.NewShortUUID(), AckDeadline: 30 * time.Second}
	topic := "levee_test_" + watermill.NewShortUUID()
	first, err := nats.New(ctx, nats.Config{URL: brokertest.NATSURL()}, set)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := first.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"held", "finished"} {
		if err := first.Publisher.Publish(topic, message.NewMessage(id, []byte(id))); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case m := <-msgs:
			go func() { // held until its context ends, then Nacked or finished
				<-m.Context().Done()
				if m.UUID == "held" {
					m.Nack()
				} else {
					m.Ack()
				}
			}()
		case <-ctx.Done():
			t.Fatal("messages not received")
		}
	}
	start := time.Now()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed in %v", time.Since(start).Round(time.Millisecond))

	second, err := nats.New(ctx, nats.Config{URL: brokertest.NATSURL()}, set)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	again, err := second.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	wait := time.NewTimer(10 * time.Second) // a third of AckWait
	defer wait.Stop()
	select {
	case m := <-again:
		m.Ack()
		if m.UUID != "held" {
			t.Fatalf("the second consumer got %q, want the Nacked message (the finished one was acked)", m.UUID)
		}
	case <-wait.C:
		t.Fatal("the Nacked message did not reach the second consumer within 10 s (AckWait is 30 s)")
	}
	select {
	case m := <-again:
		t.Fatalf("the second consumer also got %q: the finished message was not acked", m.UUID)
	case <-time.After(time.Second):
	}
}
