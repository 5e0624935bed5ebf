package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

// TestStackWithTimeout: in the canonical Stack, an attempt cut by the
// Timeout slot fails with context.DeadlineExceeded (transient) and is
// retried with the original context restored; the retry succeeds.
func TestStackWithTimeout(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := newRecPublisher()
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithJitter(func() float64 { return 1 }))
		if err != nil {
			t.Fatal(err)
		}
		to, err := middleware.NewTimeout(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stack := middleware.NewStack().Recover(middleware.Recover).DLQ(r.Middleware).Timeout(to.Middleware)
		calls := 0
		h := stack.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			calls++
			if calls == 1 {
				<-msg.Context().Done() // a slow first attempt
				return nil, msg.Context().Err()
			}
			return nil, nil
		})
		begin := time.Now()
		if _, err := h(message.NewMessage("t", nil)); err != nil {
			t.Fatalf("got %v, want success on the retry", err)
		}
		if calls != 2 || time.Since(begin) != time.Second+100*time.Millisecond {
			t.Errorf("got %d calls in %s, want 2 in 1.1s (timeout + first backoff)", calls, time.Since(begin))
		}
		if pub.total() != 0 {
			t.Errorf("dead letters: got %d, want 0", pub.total())
		}
	})
}

// TestConcurrentMessages runs many messages through one Retrier from many
// goroutines, with random failures of every class and a flaky DLQ
// publisher, redelivering every Nack: each message ends processed or
// dead-lettered exactly once, and the attempt table ends empty.
func TestConcurrentMessages(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := newRecPublisher()
		var pubMu sync.Mutex
		pubCalls := 0
		flaky := publisherFunc(func(topic string, msgs ...*message.Message) error {
			pubMu.Lock()
			pubCalls++
			fail := pubCalls%3 == 0
			pubMu.Unlock()
			if fail {
				return errors.New("flaky")
			}
			return pub.Publish(topic, msgs...)
		})
		r, err := dlq.New(flaky, dlq.WithTopic(testDLQ), dlq.WithMaxHold(300*time.Millisecond),
			dlq.WithBackoff(dlq.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2, MaxAttempts: 5}))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		processed := map[string]int{}
		h := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			switch rand.IntN(6) {
			case 0:
				return nil, dlq.Permanent(errBoom)
			case 1:
				panic("boom")
			case 2, 3:
				return nil, errBoom
			}
			mu.Lock()
			processed[msg.UUID]++
			mu.Unlock()
			return nil, nil
		})
		const workers, per = 8, 50
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					msg := message.NewMessageWithContext(context.Background(), fmt.Sprintf("%d-%d", w, i), nil)
					for { // redeliver on every Nack, honouring RetryAfter like a transport with native delay
						_, err := h(msg)
						if err == nil {
							break
						}
						var ra interface{ RetryAfter() time.Duration }
						if errors.As(err, &ra) {
							time.Sleep(ra.RetryAfter())
						} else {
							t.Errorf("%s: unexpected Nack %v", msg.UUID, err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		dead := map[string]int{}
		for _, m := range pub.published(testDLQ) {
			dead[m.UUID]++
		}
		for w := range workers {
			for i := range per {
				id := fmt.Sprintf("%d-%d", w, i)
				if processed[id]+dead[id] != 1 {
					t.Errorf("%s: processed %d, dead-lettered %d; want exactly one", id, processed[id], dead[id])
				}
			}
		}
		if r.Pending() != 0 {
			t.Errorf("pending: got %d, want 0", r.Pending())
		}
	})
}

type publisherFunc func(topic string, msgs ...*message.Message) error

func (f publisherFunc) Publish(topic string, msgs ...*message.Message) error {
	return f(topic, msgs...)
}
func (f publisherFunc) Close() error { return nil }
