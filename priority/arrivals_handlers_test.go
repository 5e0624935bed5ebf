package priority_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/priority"
)

// TestSharedSchedulerKeepsEachHandlersArrivals: a scheduler shared by two
// handlers that both consume a message (one topic, two handlers: the same
// UUID). Handler A sheds it, so A's redelivery must age from A's first
// arrival. Handler B running its own copy meanwhile must not take that
// memory away (before the fix the table was keyed by UUID alone: B's
// grant deleted A's entry, and A's redelivery started aging over, so it
// was shed again by a later, lower-ranked message).
func TestSharedSchedulerKeepsEachHandlersArrivals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const aging = 100 * time.Millisecond
		s, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWaiting(1), priority.WithAging(aging))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		run := func(*message.Message) ([]*message.Message, error) { return nil, nil }
		a, b := s.Middleware(run), s.Middleware(run)
		deliver := func(h message.HandlerFunc, uuid string, p int) chan error {
			m := message.NewMessage(uuid, nil)
			priority.Set(m, p)
			done := make(chan error, 1)
			go func() { _, err := h(m); done <- err }()
			synctest.Wait()
			return done
		}
		hold := func() {
			if err := s.Acquire(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
		}

		// t=0: the slot is held and a priority 9 fills the queue: A's
		// copy of x (priority 0) is shed.
		hold()
		f := deliver(a, "f", 9)
		if err := <-deliver(a, "x", 0); !errors.Is(err, priority.ErrQueueFull) {
			t.Fatalf("A's x at 0: got %v, want ErrQueueFull", err)
		}
		s.Release()
		if err := <-f; err != nil {
			t.Fatal(err)
		}
		// t=0.5s: B's copy of x runs on a free slot.
		time.Sleep(5 * aging)
		if err := <-deliver(b, "x", 0); err != nil {
			t.Fatalf("B's x: got %v, want a slot", err)
		}
		// t=1s: the slot is held again and a priority 5 arrives first. A's
		// redelivered x has waited 1s (10 levels of aging): it ranks above
		// the priority 5 that just came and takes its place in the queue.
		time.Sleep(5 * aging)
		hold()
		g := deliver(a, "g", 5)
		x := deliver(a, "x", 0)
		s.Release()
		synctest.Wait()
		select {
		case err := <-x:
			if err != nil {
				t.Fatalf("A's redelivered x: got %v, want a slot (it ages from its first arrival)", err)
			}
		default:
			t.Fatal("A's redelivered x: still waiting, want served first")
		}
		if err := <-g; !errors.Is(err, priority.ErrQueueFull) {
			t.Errorf("g: got %v, want ErrQueueFull (shed by x)", err)
		}
	})
}
