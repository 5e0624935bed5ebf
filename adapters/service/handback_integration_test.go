//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// hbAckDeadline is the transports' ack deadline: a held message that
// came back only after it would miss hbWithin.
const hbAckDeadline = 60 * time.Second

// hbWithin bounds how long after the first service's Close began the
// next one has processed every held message.
const hbWithin = hbAckDeadline / 3

// hbYAML holds messages at once in a rate-limit wait (burst 1, then a
// token every 15 s: the third waiter's 45 s fit in the max hold of 48 s,
// so none is deferred to the transport at once; 100/s for the next
// service), a priority queue behind the one slot's holder, and an open
// batch (max_wait 40s, under the max hold of 48 s; 50ms for the next service).
const hbYAML = `transport: %s
handlers:
  limited:
    ratelimit: {rate: %s, burst: 1, mode: wait}
  queued:
    priority: {scheduler: shared}
  batched:
    batch: {max_wait: %s, max_size: 100}
schedulers:
  shared: {slots: 1}
`

// hbSeen counts, per message, the handler runs that processed it, and
// the deliveries in flight per handler.
type hbSeen struct {
	mu        sync.Mutex
	inFlight  map[string]int
	processed map[string]int
}

func (s *hbSeen) ok(msg *message.Message) { s.mu.Lock(); s.processed[msg.UUID]++; s.mu.Unlock() }

func (s *hbSeen) flight(name string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.inFlight[name] }

// TestServiceStopHandsHeldMessagesToNextService: a rolling deploy. A
// service holds messages in a rate-limit wait, a priority queue and an
// open batch at once when it is stopped, while the next service of the
// same consumer group already runs. The stop returns within seconds, the
// next service processes every held message well before the ack deadline
// (60 s), and every message is processed exactly once: none was acked
// unprocessed, lost, or run twice. Over Redis Streams and NATS JetStream,
// the transports whose redelivery otherwise waits for the ack deadline.
func TestServiceStopHandsHeldMessagesToNextService(t *testing.T) {
	transports := map[string]string{
		"redis": fmt.Sprintf("{kind: redis, concurrency: 4, ack_deadline: %s, consumer_group: %%s, redis: {addr: %q}}", hbAckDeadline, brokertest.RedisAddr()),
		"nats":  fmt.Sprintf("{kind: nats, concurrency: 4, ack_deadline: %s, consumer_group: %%s, nats: {url: %q}}", hbAckDeadline, brokertest.NATSURL()),
	}
	for _, kind := range []string{"redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			tr := fmt.Sprintf(transports[kind], brokertest.Name("hb"))
			hbRolling(t, tr)
		})
	}
}

// hbStart starts a service on prefix's topics whose handlers hold every
// message they get (held) or process it.
func hbStart(t *testing.T, transport, prefix string, seen *hbSeen, held bool) (*service.Service, context.CancelFunc) {
	t.Helper()
	rate, wait := "100/s", "50ms"
	if held {
		rate, wait = "4/min", "40s"
	}
	svc, err := service.New(context.Background(), parse(t, fmt.Sprintf(hbYAML, transport, rate, wait)), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Router.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			name := message.HandlerNameFromCtx(msg.Context())
			seen.mu.Lock()
			seen.inFlight[name]++
			seen.mu.Unlock()
			defer func() { seen.mu.Lock(); seen.inFlight[name]--; seen.mu.Unlock() }()
			return h(msg)
		}
	})
	svc.Handle("limited", prefix+"limited", func(msg *message.Message) error { seen.ok(msg); return nil })
	svc.Handle("queued", prefix+"queued", func(msg *message.Message) error {
		if held {
			<-msg.Context().Done() // holds the one priority slot
			return msg.Context().Err()
		}
		seen.ok(msg)
		return nil
	})
	if err := svc.HandleBatch("batched", prefix+"batched", func(_ context.Context, msgs []*message.Message) error {
		for _, m := range msgs {
			seen.ok(m)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()
	return svc, cancel
}

func hbRolling(t *testing.T, transport string) {
	prefix := brokertest.Name("hb") + "_"
	seen := &hbSeen{inFlight: map[string]int{}, processed: map[string]int{}}
	first, cancelFirst := hbStart(t, transport, prefix, seen, true)
	defer cancelFirst()
	var sent []string
	topicOf := map[string]string{}
	for name, n := range map[string]int{"limited": 4, "queued": 3, "batched": 2} {
		for range n {
			m := message.NewMessage(watermill.NewUUID(), []byte(name))
			sent = append(sent, m.UUID)
			topicOf[m.UUID] = name
			if err := first.Transport.Publisher.Publish(prefix+name, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	// limited: the burst's message processed, 3 waiting for a token.
	hbWait(t, "messages held", seen, func() bool {
		return seen.flight("limited") == 3 && seen.flight("queued") == 3 && seen.flight("batched") == 2
	})
	seen.mu.Lock()
	before := len(seen.processed)
	seen.mu.Unlock()
	if before != 1 {
		t.Fatalf("%d messages processed while held, want 1 (the rate limit's burst)", before)
	}

	next, cancelNext := hbStart(t, transport, prefix, seen, false)
	defer func() {
		cancelNext()
		_ = next.Transport.DeleteTopics(context.Background(), prefix+"limited", prefix+"queued", prefix+"batched")
		_ = next.Close()
	}()
	start := time.Now()
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > svcStopWithin {
		t.Fatalf("stopped in %v, want within %v", took, svcStopWithin)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	deadline := start.Add(hbWithin)
	for {
		seen.mu.Lock()
		n := len(seen.processed)
		seen.mu.Unlock()
		if n == len(sent) {
			break
		}
		if time.Now().After(deadline) {
			seen.mu.Lock()
			var missing []string
			for _, id := range sent {
				if seen.processed[id] == 0 {
					missing = append(missing, topicOf[id])
				}
			}
			seen.mu.Unlock()
			t.Fatalf("%d of %d messages processed %v after the stop began (ack deadline %v); not processed, by handler: %v", n, len(sent), hbWithin, hbAckDeadline, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("every held message processed by the next service %v after the stop began", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // a second run would show here
	seen.mu.Lock()
	defer seen.mu.Unlock()
	var errs []error
	for _, id := range sent {
		if c := seen.processed[id]; c != 1 {
			errs = append(errs, fmt.Errorf("message %s processed %d times", id, c))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func hbWait(t *testing.T, what string, seen *hbSeen, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			seen.mu.Lock()
			defer seen.mu.Unlock()
			t.Fatalf("timed out waiting for %s: in flight %v, processed %d", what, seen.inFlight, len(seen.processed))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
