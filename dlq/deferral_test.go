package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// redelivery models how a transport brings a Nacked message back.
type redelivery struct {
	name string
	// count: deliveries carry the transport's 1-based delivery count, as
	// NATS JetStream and RabbitMQ quorum queues do; every Nack raises it.
	count bool
	// native: the redelivery waits the error's RetryAfter (NATS
	// NakWithDelay, PostgreSQL); otherwise it comes back at once.
	native bool
}

var redeliveries = []redelivery{
	{name: "immediate"},                                // GoChannel, RabbitMQ classic, Redis Streams
	{name: "counted", count: true},                     // RabbitMQ quorum queues
	{name: "counted+delay", count: true, native: true}, // NATS JetStream
	{name: "delay", native: true},                      // PostgreSQL
}

// fate is what became of one message on the simulated transport.
type fate struct {
	deliveries int
	acked      bool
}

// deliverAll delivers every message to h concurrently and redelivers each
// Nack as rd does, until each message is acked; it returns the fate of each
// by UUID. A message delivered more than limit times fails the test.
func deliverAll(t *testing.T, rd redelivery, h message.HandlerFunc, msgs []*message.Message, limit int) map[string]*fate {
	t.Helper()
	var (
		mu    sync.Mutex
		fates = map[string]*fate{}
		wg    sync.WaitGroup
	)
	for _, orig := range msgs {
		f := &fate{}
		fates[orig.UUID] = f
		wg.Go(func() {
			for f.deliveries < limit {
				f.deliveries++
				m := orig.Copy()
				if rd.count {
					m.Metadata.Set(dlq.KeyDeliveryCount, strconv.Itoa(f.deliveries))
				}
				ctx, cancel := context.WithCancel(context.Background())
				m.SetContext(ctx)
				_, err := h(m)
				cancel()
				if err == nil {
					mu.Lock()
					f.acked = true
					mu.Unlock()
					return
				}
				var ra interface{ RetryAfter() time.Duration }
				if rd.native && errors.As(err, &ra) && ra.RetryAfter() > 0 {
					time.Sleep(min(ra.RetryAfter(), levee.MaxRetryAfter))
				}
			}
		})
	}
	wg.Wait()
	for id, f := range fates {
		if !f.acked {
			t.Errorf("message %s: not settled after %d deliveries", id, f.deliveries)
		}
	}
	return fates
}

// callCounter counts handler calls per message UUID.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[id]++
}

func (c *callCounter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

const poisonID = "poison"

// backpressureCase builds one stack whose inner layers defer messages.
type backpressureCase struct {
	name string
	// stack returns the composed handler around fn and a cleanup.
	stack func(t *testing.T, d *dlq.Retrier, fn message.HandlerFunc) (message.HandlerFunc, func())
	// handler is the user's handler for a healthy message.
	handler func(start time.Time) error
}

var errDown = errors.New("downstream unavailable")

func backpressureCases() []backpressureCase {
	return []backpressureCase{
		{
			// A 20 s outage while the breaker holds messages at most 1 s.
			name: "breaker outage 20s, max hold 1s",
			stack: func(t *testing.T, d *dlq.Retrier, fn message.HandlerFunc) (message.HandlerFunc, func()) {
				b, err := breaker.New(breaker.WithMaxHold(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				s := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Breaker(b.Middleware)
				return s.Middleware(fn), func() { _ = b.Close() }
			},
			handler: func(start time.Time) error {
				if time.Since(start) < 20*time.Second {
					return errDown
				}
				return nil
			},
		},
		{
			// A burst of 20 against a 2/s limiter in reject mode.
			name: "ratelimit reject 2/s",
			stack: func(t *testing.T, d *dlq.Retrier, fn message.HandlerFunc) (message.HandlerFunc, func()) {
				l, err := ratelimit.New(ratelimit.WithRate(2), ratelimit.WithMode(ratelimit.ModeReject))
				if err != nil {
					t.Fatal(err)
				}
				s := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).RateLimit(l.Middleware)
				return s.Middleware(fn), func() { _ = l.Close() }
			},
			handler: func(time.Time) error { return nil },
		},
		{
			// One slot, one waiting place: most messages are shed.
			name: "priority 1 slot, max_waiting 1",
			stack: func(t *testing.T, d *dlq.Retrier, fn message.HandlerFunc) (message.HandlerFunc, func()) {
				s, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWaiting(1))
				if err != nil {
					t.Fatal(err)
				}
				st := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Priority(s.Middleware)
				return st.Middleware(fn), func() { _ = s.Close() }
			},
			handler: func(time.Time) error {
				time.Sleep(100 * time.Millisecond)
				return nil
			},
		},
	}
}

// TestBackpressureIsNotFailure: under an outage longer than the breaker's
// max hold, a rejecting rate limit and a shedding scheduler, on every kind
// of redelivery, no healthy message is dead-lettered, every one is
// processed, and a poison message in the same run gets exactly max
// attempts handler calls before its one dead letter.
func TestBackpressureIsNotFailure(t *testing.T) {
	const healthy, maxAttempts = 20, 5
	for _, bc := range backpressureCases() {
		for _, rd := range redeliveries {
			t.Run(bc.name+"/"+rd.name, func(t *testing.T) {
				testkit.Synctest(t, func(t *testing.T) {
					pub := newRecPublisher()
					d, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(maxAttempts))
					if err != nil {
						t.Fatal(err)
					}
					var calls callCounter
					start := time.Now()
					h, done := bc.stack(t, d, func(msg *message.Message) ([]*message.Message, error) {
						calls.add(msg.UUID)
						if msg.UUID == poisonID {
							return nil, errors.New("poison")
						}
						return nil, bc.handler(start)
					})
					defer done()
					msgs := []*message.Message{message.NewMessage(poisonID, nil)}
					for i := range healthy {
						msgs = append(msgs, message.NewMessage("m"+strconv.Itoa(i), nil))
					}
					fates := deliverAll(t, rd, h, msgs, 10000)

					if got := calls.get(poisonID); got != maxAttempts {
						t.Errorf("poison handler calls: got %d, want exactly %d (deliveries %d)", got, maxAttempts, fates[poisonID].deliveries)
					}
					letters := pub.published(testDLQ)
					if len(letters) != 1 || letters[0].UUID != poisonID {
						ids := make([]string, len(letters))
						for i, l := range letters {
							ids[i] = l.UUID + ":" + l.Metadata.Get(dlq.KeyError)
						}
						t.Fatalf("dead letters: got %v, want only the poison message", ids)
					}
					if got := letters[0].Metadata.Get(dlq.KeyAttempts); got != strconv.Itoa(maxAttempts) {
						t.Errorf("poison letter attempts: got %s, want %d", got, maxAttempts)
					}
					if got := letters[0].Metadata.Get(dlq.KeyErrorClass); got != string(dlq.ClassExhausted) {
						t.Errorf("poison letter class: got %s, want exhausted", got)
					}
					if d.Pending() != 0 {
						t.Errorf("attempt table: %d entries left, want 0", d.Pending())
					}
				})
			})
		}
	}
}

// TestDeferralWaitsInProcessWithinMaxHold: with a max hold, a deferral
// whose RetryAfter fits in it is waited in process and the handler runs in
// the same delivery; one that does not fit is Nacked with its RetryAfter
// and the redelivery does not run before it.
func TestDeferralWaitsInProcessWithinMaxHold(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := newRecPublisher()
		d, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxHold(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var after time.Duration
		calls := 0
		h := d.Middleware(func(*message.Message) ([]*message.Message, error) {
			calls++
			if calls == 1 {
				return nil, levee.Defer(after, nil)
			}
			return nil, nil
		})

		after, calls = 300*time.Millisecond, 0
		begin := time.Now()
		if _, err := h(message.NewMessage("a", nil)); err != nil {
			t.Fatalf("short deferral: got %v, want success in the same delivery", err)
		}
		if calls != 2 || time.Since(begin) != after {
			t.Errorf("short deferral: %d calls after %s, want 2 after %s", calls, time.Since(begin), after)
		}

		after, calls = 5*time.Second, 0
		begin = time.Now()
		_, err = h(message.NewMessage("b", nil))
		if !levee.IsDeferral(err) || time.Since(begin) != 0 {
			t.Fatalf("long deferral: got %v after %s, want the deferral at once", err, time.Since(begin))
		}
		// An early redelivery (a transport without delay) waits at most
		// max hold, then is Nacked again: no handler call before RetryAfter.
		begin = time.Now()
		_, err = h(message.NewMessage("b", nil))
		if err == nil || calls != 1 || time.Since(begin) != time.Second {
			t.Fatalf("early redelivery: got %v, %d calls after %s; want a Nack after 1s and no call", err, calls, time.Since(begin))
		}
		time.Sleep(4 * time.Second)
		if _, err := h(message.NewMessage("b", nil)); err != nil || calls != 2 {
			t.Fatalf("due redelivery: got %v, %d calls; want success on call 2", err, calls)
		}
		if pub.total() != 0 || d.Pending() != 0 {
			t.Errorf("dead letters %d, pending %d; want 0 and 0", pub.total(), d.Pending())
		}
	})
}

// TestDeferralsDoNotSpendDeliveryCount: on a transport that counts
// deliveries, deliveries that ended in a deferral are not attempts: a
// message deferred 30 times then failing keeps its full retry budget.
func TestDeferralsDoNotSpendDeliveryCount(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := newRecPublisher()
		d, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(3), dlq.WithBackoff(dlq.Backoff{
			MaxAttempts: 3, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}))
		if err != nil {
			t.Fatal(err)
		}
		deferring, calls := true, 0
		h := d.Middleware(func(*message.Message) ([]*message.Message, error) {
			if deferring {
				return nil, levee.Defer(0, nil)
			}
			calls++
			return nil, errors.New("fails")
		})
		for n := 1; ; n++ {
			if n == 31 {
				deferring = false
			}
			m := message.NewMessage("u", nil)
			m.Metadata.Set(dlq.KeyDeliveryCount, strconv.Itoa(n))
			if _, err := h(m); err == nil {
				break
			}
			if n > 100 {
				t.Fatal("never dead-lettered")
			}
		}
		if calls != 3 || pub.total() != 1 {
			t.Errorf("got %d attempts and %d dead letters, want 3 and 1", calls, pub.total())
		}
	})
}

// TestOutageWithAMessageAlone: a message alone in flight when an outage
// starts (a quiet service) is the only source of failures the breaker
// sees, and a breaker cannot tell it from a poison message. With the
// defaults (5 consecutive failures, 5 attempts) its fifth attempt trips
// the breaker and exhausts it at once: it is dead-lettered even though the
// outage ends 5 s later. With the breaker's threshold below max attempts
// (3), the breaker trips while the message has two attempts left, which
// the half-open probes spend one per open period: it survives an outage
// shorter than about 2 × open_for (20 s) and is dead-lettered after a
// longer one. docs/BREAKER.md ("A message alone in flight") states these
// figures.
func TestOutageWithAMessageAlone(t *testing.T) {
	for _, tc := range []struct {
		name        string
		consecutive int
		outage      time.Duration
		deadLetter  bool
		calls       int
	}{
		{"defaults, outage 5s", 5, 5 * time.Second, true, 5},
		{"threshold 3, outage 15s", 3, 15 * time.Second, false, 5},
		{"threshold 3, outage 25s", 3, 25 * time.Second, true, 5},
	} {
		for _, rd := range redeliveries {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				testkit.Synctest(t, func(t *testing.T) {
					pub := newRecPublisher()
					d, err := dlq.New(pub, dlq.WithTopic(testDLQ))
					if err != nil {
						t.Fatal(err)
					}
					b, err := breaker.New(breaker.WithConsecutiveFailures(tc.consecutive), breaker.WithMaxHold(time.Second))
					if err != nil {
						t.Fatal(err)
					}
					defer b.Close()
					var calls callCounter
					start := time.Now()
					h := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Breaker(b.Middleware).
						Middleware(func(msg *message.Message) ([]*message.Message, error) {
							calls.add(msg.UUID)
							if time.Since(start) < tc.outage {
								return nil, errDown
							}
							return nil, nil
						})
					deliverAll(t, rd, h, []*message.Message{message.NewMessage("alone", nil)}, 10000)
					letters := pub.published(testDLQ)
					if got := len(letters) == 1; got != tc.deadLetter {
						t.Errorf("dead-lettered: got %d letters, want dead-lettered %v", len(letters), tc.deadLetter)
					}
					if got := calls.get("alone"); got != tc.calls {
						t.Errorf("handler calls: got %d, want %d", got, tc.calls)
					}
				})
			})
		}
	}
}

// TestMaxDeferred: with WithMaxDeferred, a message deferred again that
// long after its first deferral is dead-lettered (class exhausted, no
// handler attempt, the deferral in its error); without it, never.
func TestMaxDeferred(t *testing.T) {
	for _, max := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("max_deferred=", max), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				pub := newRecPublisher()
				d, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxHold(time.Second), dlq.WithMaxDeferred(max))
				if err != nil {
					t.Fatal(err)
				}
				h := d.Middleware(func(*message.Message) ([]*message.Message, error) {
					return nil, levee.Defer(10*time.Second, errors.New("rate limited"))
				})
				begin := time.Now()
				for time.Since(begin) < 10*time.Minute {
					_, err := h(message.NewMessage("m", nil))
					if err == nil {
						break // dead-lettered: acked
					}
					if !levee.IsDeferral(err) {
						t.Fatalf("after %s: got %v, want a deferral or a dead letter", time.Since(begin), err)
					}
					time.Sleep(10 * time.Second) // the broker's delayed redelivery
				}
				dead := pub.published(testDLQ)
				if max == 0 {
					if len(dead) != 0 {
						t.Fatalf("without max_deferred a deferral was dead-lettered: %v", dead[0].Metadata)
					}
					return
				}
				if len(dead) != 1 {
					t.Fatalf("got %d dead letters after %s, want 1", len(dead), time.Since(begin))
				}
				if took := time.Since(begin); took < max || took > max+11*time.Second {
					t.Errorf("dead-lettered after %s, want once %s passed (at the next redelivery)", took, max)
				}
				md := dead[0].Metadata
				if md[dlq.KeyErrorClass] != string(levee.ClassExhausted) || md[dlq.KeyAttempts] != "0" ||
					!strings.Contains(md[dlq.KeyError], "deferred too long") || !strings.Contains(md[dlq.KeyError], "rate limited") {
					t.Errorf("letter: class %s, attempts %s, error %q; want exhausted, 0, the deferral named", md[dlq.KeyErrorClass], md[dlq.KeyAttempts], md[dlq.KeyError])
				}
				if d.Pending() != 0 {
					t.Errorf("pending %d after the dead letter, want 0", d.Pending())
				}
			})
		})
	}
}
