package dedup_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// failFirst is a publisher that fails its first n publishes and hands
// the rest to inner.
type failFirst struct {
	inner message.Publisher
	n     atomic.Int32
}

func (p *failFirst) Publish(topic string, msgs ...*message.Message) error {
	if p.n.Add(-1) >= 0 {
		return errors.New("publisher down")
	}
	return p.inner.Publish(topic, msgs...)
}

func (p *failFirst) Close() error { return nil }

// TestProducedMessagesSurviveAFailedPublish: the router publishes the
// messages a handler returns after the middleware chain returned, and
// Nacks the message when that publish fails. The done mark must wait for
// the router's Ack: written at once, it made the redelivery a duplicate,
// acked without running, and the handler's output was lost for good.
func TestProducedMessagesSurviveAFailedPublish(t *testing.T) {
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pubsub.Close()
	out, err := pubsub.Subscribe(context.Background(), "out")
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	pub := &failFirst{inner: pubsub}
	pub.n.Store(1)
	d := newDedup(t)
	defer func() { _ = d.Close() }() // after the router stopped
	var runs atomic.Int32
	router.AddHandler("h", "in", pubsub, "out", pub, d.Middleware(func(m *message.Message) ([]*message.Message, error) {
		runs.Add(1)
		return []*message.Message{msg("out-"+m.UUID, "")}, nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-router.Running()
	if err := pubsub.Publish("in", msg("m1", "")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-out:
		m.Ack()
		if m.UUID != "out-m1" {
			t.Errorf("got output %q, want out-m1", m.UUID)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the handler's output was never published (runs: %d): its redelivery after the failed publish was acked as a duplicate", runs.Load())
	}
	if got := runs.Load(); got != 2 {
		t.Errorf("handler runs: got %d, want 2 (the one whose output failed to publish, then its redelivery)", got)
	}
}

// TestProducedMessagesWaitForTheRouter: without a router, the message's
// own Ack or Nack decides: a Nack releases the claim (the redelivery
// runs), an Ack marks the identity done (the next delivery is a
// duplicate), and Close releases the claim of a message settled by
// neither, as it does after Close.
func TestProducedMessagesWaitForTheRouter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newDedup(t)
		runs := map[string]int{}
		h := d.Middleware(func(m *message.Message) ([]*message.Message, error) {
			runs[m.UUID]++
			return []*message.Message{msg("out", "")}, nil
		})
		deliver := func(uuid string) *message.Message {
			t.Helper()
			m := msg(uuid, "")
			if _, err := h(m); err != nil {
				t.Fatalf("%s: %v", uuid, err)
			}
			return m
		}
		deliver("nacked").Nack()
		synctest.Wait()
		deliver("nacked").Ack()
		synctest.Wait()
		deliver("nacked")
		if got := runs["nacked"]; got != 2 {
			t.Errorf("runs of the Nacked message: got %d, want 2 (its redelivery runs, then a duplicate is acked)", got)
		}
		deliver("unsettled")
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		deliver("unsettled")
		deliver("unsettled")
		if got := runs["unsettled"]; got != 3 {
			t.Errorf("runs of the message never settled: got %d, want 3 (Close released its claim, and after Close a claim is released at once)", got)
		}
	})
}
