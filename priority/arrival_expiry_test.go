package priority_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/priority"
)

// TestStaleArrivalExpires: a shed message whose redelivery never comes to
// this process (another consumer took it, the broker dropped it) leaves
// its first arrival in the scheduler. A message that reuses its UUID an
// hour later (a producer using order ids as UUIDs) must rank by its own
// arrival, not as one that has waited an hour: the remembered arrival
// expires priority.ArrivalTTL after the rejection's RetryAfter.
func TestStaleArrivalExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWaiting(1),
			priority.WithAging(500*time.Millisecond), priority.WithRetryAfter(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		release := make(chan struct{})
		defer close(release)
		h := s.Middleware(func(m *message.Message) ([]*message.Message, error) {
			if m.Metadata.Get("block") == "1" {
				<-release
			}
			return nil, nil
		})
		results := map[string]chan error{}
		deliver := func(uuid string, p int, block bool) {
			m := message.NewMessage(uuid, nil)
			m.Metadata.Set(levee.KeyPriority, strconv.Itoa(p))
			if block {
				m.Metadata.Set("block", "1")
			}
			m.SetContext(context.Background())
			done := make(chan error, 1)
			results[uuid] = done
			go func() { _, err := h(m); done <- err }()
			synctest.Wait()
		}
		rejected := func(uuid string) bool {
			select {
			case err := <-results[uuid]:
				var re *priority.RejectError
				if err != nil && !errors.As(err, &re) {
					t.Fatalf("%s: %v", uuid, err)
				}
				results[uuid] <- err
				return err != nil
			default:
				return false
			}
		}
		// Round 1: order-1 is shed behind a busy slot and a full queue.
		deliver("busy-1", 9, true)
		deliver("wait-1", 9, false)
		deliver("order-1", 0, false)
		if !rejected("order-1") {
			t.Fatal("round 1: order-1 was not shed")
		}
		release <- struct{}{}
		synctest.Wait()
		time.Sleep(time.Hour) // order-1's redelivery went elsewhere
		// Round 2: a new message with the same UUID, priority 0, meets a
		// priority-5 message waiting; the queue holds one, so one is shed.
		deliver("busy-2", 9, true)
		deliver("p5", 5, false)
		deliver("order-1", 0, false)
		if rejected("p5") || !rejected("order-1") {
			t.Fatalf("round 2: shed p5 %v, order-1 %v; want order-1 shed (its own arrival), p5 kept", rejected("p5"), rejected("order-1"))
		}
	})
}
