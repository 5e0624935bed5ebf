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

// TestNATSCloseHandsHeldMessageToLiveConsumer: a rolling deploy. The next
// consumer of the group already runs when the first, with idle workers
// whose pull requests still wait on the server, closes while it holds a
// message: the Nacked message reaches the live consumer at once, in every
// round. (This one passed before the settle moved after the unsubscribe
// too; the service's rolling-deploy test, with three topics held at once,
// is the one that lost messages to the closing subscription:
// TestServiceStopHandsHeldMessagesToNextService/nats.)
func TestNATSCloseHandsHeldMessageToLiveConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set := transport.Settings{Concurrency: 4, ConsumerGroup: "handover-" + watermill.NewShortUUID(), AckDeadline: 30 * time.Second}
	topic := "levee_test_" + watermill.NewShortUUID()
	for round := range 4 {
		first, err := nats.New(ctx, nats.Config{URL: brokertest.NATSURL()}, set)
		if err != nil {
			t.Fatal(err)
		}
		held, err := first.Subscriber.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		id := watermill.NewUUID()
		if err := first.Publisher.Publish(topic, message.NewMessage(id, []byte("held"))); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-held:
			go func() { <-m.Context().Done(); m.Nack() }()
		case <-ctx.Done():
			t.Fatal("message not received")
		}
		// the next consumer starts while the first holds the message
		next, err := nats.New(ctx, nats.Config{URL: brokertest.NATSURL()}, set)
		if err != nil {
			t.Fatal(err)
		}
		again, err := next.Subscriber.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // every idle worker of both has a pull request waiting
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-again:
			m.Ack()
			if m.UUID != id {
				t.Fatalf("round %d: the live consumer got %q, want the held message", round, m.UUID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the held message did not reach the live consumer within 10 s (AckWait 30 s)", round)
		}
		_ = next.Close()
	}
}
