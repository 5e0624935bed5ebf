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
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// svcStopWithin bounds a stop with messages held: well below the router's
// CloseTimeout (30 s in a service).
const svcStopWithin = 10 * time.Second

// svcHeldYAML holds messages in a dlq backoff (10 minutes, in process: the
// max hold is 80% of RabbitMQ's 30 minute consumer timeout; Kafka has
// none), behind a
// priority slot whose holder runs, and in an open batch (max_wait 1m;
// 50ms for the service that processes them afterwards).
const svcHeldYAML = `transport: %s
handlers:
  retrying:
    dlq: {retry: {max_attempts: 5, initial: 10m, max: 10m}}
  queued:
    priority: {scheduler: shared}
  batched:
    batch: {max_wait: %s, max_size: 100}
schedulers:
  shared: {slots: 1}
`

// svcSeen records, per handler, the deliveries in flight and the
// messages processed.
type svcSeen struct {
	mu        sync.Mutex
	inFlight  map[string]int
	started   map[string]int // deliveries by handler, redeliveries included
	processed map[string]bool
}

func (s *svcSeen) flight(name string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.inFlight[name] }

// deliveries returns how many deliveries handler name got.
func (s *svcSeen) deliveries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started[name]
}

// track is router middleware that counts each handler's deliveries in
// flight, for flight, and in all, for deliveries.
func (s *svcSeen) track(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		name := message.HandlerNameFromCtx(msg.Context())
		s.mu.Lock()
		s.inFlight[name]++
		if s.started == nil {
			s.started = map[string]int{}
		}
		s.started[name]++
		s.mu.Unlock()
		defer func() { s.mu.Lock(); s.inFlight[name]--; s.mu.Unlock() }()
		return h(msg)
	}
}

func (s *svcSeen) count(ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if s.processed[id] {
			n++
		}
	}
	return n
}

func (s *svcSeen) ok(msg *message.Message) { s.mu.Lock(); s.processed[msg.UUID] = true; s.mu.Unlock() }

// svcStart starts a service on prefix's queues whose handlers hold every
// message (held) or process it.
func svcStart(t *testing.T, transport, prefix string, seen *svcSeen, held bool) (*service.Service, context.CancelFunc, chan error) {
	t.Helper()
	wait := "50ms"
	if held {
		wait = "1m"
	}
	svc, err := service.New(context.Background(), parse(t, fmt.Sprintf(svcHeldYAML, transport, wait)), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Router.AddMiddleware(seen.track)
	svc.Handle("retrying", prefix+"retrying", func(msg *message.Message) error {
		if held {
			return errors.New("downstream down") // transient: the dlq backs off 10 minutes
		}
		seen.ok(msg)
		return nil
	})
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
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Running()
	return svc, cancel, ran
}

// TestServiceStopsWithMessagesHeld: a service over RabbitMQ holds
// messages in a dlq backoff, a priority queue and an open batch when it is
// stopped by Close, or by cancelling Run's context and then Close. Each
// returns within seconds, and a service started afterwards on the same
// queues processes every message.
func TestServiceStopsWithMessagesHeld(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.AMQPURL())
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	transports := map[string]string{
		"amqp":  fmt.Sprintf("{kind: amqp, concurrency: 4, amqp: {url: %q}}", brokertest.AMQPURL()),
		"kafka": fmt.Sprintf("{kind: kafka, concurrency: 4, consumer_group: %s, kafka: {brokers: [%q]}}", brokertest.Name("svc_stop"), cluster.ListenAddrs()[0]),
	}
	for _, kind := range []string{"amqp", "kafka"} {
		for _, how := range []string{"close", "cancel"} {
			t.Run(kind+"/"+how, func(t *testing.T) { svcStop(t, transports[kind], how) })
		}
	}
}

func svcStop(t *testing.T, transport, how string) {
	prefix := brokertest.Name("svc_stop_"+how) + "_"
	seen := &svcSeen{inFlight: map[string]int{}, processed: map[string]bool{}}
	svc, cancel, ran := svcStart(t, transport, prefix, seen, true)
	var sent []string
	for name, n := range map[string]int{"retrying": 2, "queued": 3, "batched": 2} {
		for range n {
			m := message.NewMessage(watermill.NewUUID(), []byte(name))
			sent = append(sent, m.UUID)
			if err := svc.Transport.Publisher.Publish(prefix+name, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	svcWait(t, "messages held", func() bool {
		return seen.flight("retrying") == 2 && seen.flight("queued") == 3 && seen.flight("batched") == 2
	})
	start := time.Now()
	if how == "cancel" {
		cancel()
		select {
		case <-ran:
		case <-time.After(svcStopWithin):
			t.Fatalf("Run still running %v after its context was cancelled", svcStopWithin)
		}
	}
	if err := svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > svcStopWithin {
		t.Fatalf("stopped in %v, want within %v", took, svcStopWithin)
	}
	t.Logf("%s: stopped in %v", how, time.Since(start).Round(time.Millisecond))
	cancel()
	if n := seen.count(sent); n != 0 {
		t.Fatalf("%d held messages processed, want 0", n)
	}

	next, cancelNext, _ := svcStart(t, transport, prefix, seen, false)
	defer next.Close()
	defer cancelNext()
	defer func() {
		_ = next.Transport.DeleteTopics(context.Background(), prefix+"retrying", prefix+"queued", prefix+"batched")
	}()
	svcWait(t, "every message processed by the next service", func() bool { return seen.count(sent) == len(sent) })
}

func svcWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
