package dlq_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

// flakyPublisher fails every other publish, to prove a failed DLQ publish
// loses nothing.
type flakyPublisher struct {
	next  message.Publisher
	calls atomic.Int64
	fails atomic.Int64
}

func (p *flakyPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.calls.Add(1)%2 == 1 {
		p.fails.Add(1)
		return errors.New("injected publish failure")
	}
	return p.next.Publish(topic, msgs...)
}

func (p *flakyPublisher) Close() error { return nil }

// TestRouterOverGoChannel runs the Retrier in a real Watermill router with
// Recover outside it: every message is either processed or dead-lettered,
// processed + dead-lettered = sent, and dead letters carry the handler and
// topic from the router context.
func TestRouterOverGoChannel(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		h := testkit.New(t)
		pub := &flakyPublisher{next: h.PubSub}
		r, err := dlq.New(pub, dlq.WithMaxAttempts(4), dlq.WithConsumerGroup("orders-svc"),
			dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2, MaxAttempts: 4}))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		processed := map[string]bool{}
		tries := map[string]int{}
		stack := middleware.NewStack().Recover(middleware.Recover).DLQ(r.Middleware)
		// Recover sits outside the dlq slot (canonical order): the Retrier
		// recovers the handler's panic itself and dead-letters it.
		h.Handle("orders", "orders", func(msg *message.Message) error {
			mu.Lock()
			tries[msg.UUID]++
			n := tries[msg.UUID]
			mu.Unlock()
			switch string(msg.Payload) {
			case "poison":
				return dlq.Permanent(fmt.Errorf("order %s rejected", msg.UUID))
			case "panic":
				panic("nil map")
			case "flaky":
				if n < 3 {
					return errors.New("payment gateway timeout")
				}
			case "broken":
				return errors.New("database unreachable")
			}
			mu.Lock()
			processed[msg.UUID] = true
			mu.Unlock()
			return nil
		}, stack.Middleware)
		h.WatchDeadLetters("orders.dlq")
		h.Start()
		kinds := []string{"ok", "poison", "flaky", "panic", "broken", "ok", "flaky", "ok"}
		const n = 80
		h.PublishN("orders", n, func(i int) *message.Message {
			return message.NewMessage(watermill.NewUUID(), []byte(kinds[i%len(kinds)]))
		})
		wantDead := n * 3 / 8
		c := h.WaitFor(func(c testkit.Counts) bool { return c.Acked >= n && c.DeadLettered >= wantDead }, time.Minute)
		mu.Lock()
		nProcessed := len(processed)
		mu.Unlock()
		if nProcessed+c.DeadLettered != n {
			t.Fatalf("processed %d + dead-lettered %d != sent %d (%s)", nProcessed, c.DeadLettered, n, c)
		}
		if c.DeadLettered != wantDead || c.Acked != n {
			t.Errorf("dead-lettered/acked: got %d/%d, want %d/%d", c.DeadLettered, c.Acked, wantDead, n)
		}
		if pub.fails.Load() == 0 {
			t.Errorf("no DLQ publish failure was injected")
		}
		classes := map[string]int{}
		for _, dl := range h.DeadLetters() {
			md := dl.Metadata
			classes[md[dlq.KeyErrorClass]]++
			if md[dlq.KeyOriginalTopic] != "orders" || md[dlq.KeyHandler] != "orders" || md[dlq.KeyConsumerGroup] != "orders-svc" {
				t.Errorf("context keys: got topic %q handler %q group %q", md[dlq.KeyOriginalTopic], md[dlq.KeyHandler], md[dlq.KeyConsumerGroup])
			}
		}
		want := map[string]int{"permanent": n / 8, "panic": n / 8, "exhausted": n / 8}
		for k, v := range want {
			if classes[k] != v {
				t.Errorf("class %s: got %d, want %d (all %v)", k, classes[k], v, classes)
			}
		}
		if r.Pending() != 0 {
			t.Errorf("pending: got %d, want 0", r.Pending())
		}
	})
}
