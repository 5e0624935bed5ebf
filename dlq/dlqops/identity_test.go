package dlqops_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestTwoHandlersFailingOneMessageKeepTwoLetters runs the case on a
// router: two handlers consume one topic and both dead-letter the same
// message (same UUID) to orders.dlq. The monitor keeps both letters, one
// per handler, and a message a producer published with the same UUID on
// another topic hides neither; a redelivery of a letter is still one.
func TestTwoHandlersFailingOneMessageKeepTwoLetters(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		h := testkit.New(t)
		dr, err := dlq.New(h.PubSub, dlq.WithMaxAttempts(1), dlq.WithTopic("orders.dlq"))
		if err != nil {
			t.Fatal(err)
		}
		s := dlqops.NewMemStore()
		mon, err := dlqops.NewMonitor(s)
		if err != nil {
			t.Fatal(err)
		}
		fail := func(msg *message.Message) error { return dlq.Permanent(errors.New("rejected")) }
		h.Handle("ship", "orders", fail, dr.Middleware)
		h.Handle("bill", "orders", fail, dr.Middleware)
		h.Handle("spam", "spam", fail, dr.Middleware)
		var mu sync.Mutex
		var seen []*message.Message // guarded by mu
		h.Handle("dlq-monitor", "orders.dlq", func(msg *message.Message) error {
			mu.Lock()
			seen = append(seen, msg)
			mu.Unlock()
			return mon.Handle(msg)
		})
		h.Start()
		const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
		// the producer of topic spam reuses the victim's UUID, first
		h.Publish("spam", message.NewMessage(uuid, []byte(`{"forged":true}`)))
		synctest.Wait()
		h.Publish("orders", message.NewMessage(uuid, []byte(`{"order":1}`)))
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 3 {
			t.Fatalf("monitor saw %d dead letters want 3", len(seen))
		}
		// a redelivery of the first letter
		if err := mon.Record(context.Background(), "orders.dlq", seen[0].Copy()); err != nil {
			t.Fatal(err)
		}
		letters, err := s.List(context.Background(), dlqops.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var handlers []string
		for _, dl := range letters {
			if dl.UUID != uuid {
				t.Errorf("letter %s has uuid %q", dl.ID, dl.UUID)
			}
			handlers = append(handlers, dl.Handler)
		}
		slices.Sort(handlers)
		if !slices.Equal(handlers, []string{"bill", "ship", "spam"}) {
			t.Errorf("letters by handler %v want [bill ship spam]", handlers)
		}
	})
}
