//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// A deferral longer than the max hold comes back after its RetryAfter,
// not at once: New puts the transport's RetryAfter middleware on the
// router, so NATS redelivers with the delay (without it the message came
// back within milliseconds, ten times before it was due). The handler
// defers with levee.Defer, whose delay is exact (a retry's backoff is
// jittered, so its delay could fall below the hold or the check).
func TestDeferredRetryIsDelayedByTheTransport(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.NATSURL())
	topic := brokertest.Name("svc_delay")
	y := fmt.Sprintf(`transport: {kind: nats, nats: {url: %q}}
handlers:
  later:
    dlq:
      max_hold: 100ms
`, brokertest.NATSURL())
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	defer func() { _ = svc.Transport.DeleteTopics(context.Background(), topic) }()

	var (
		mu    sync.Mutex
		times []time.Time
	)
	svc.Router.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			return h(msg)
		}
	})
	done := make(chan struct{})
	calls := 0
	svc.Handle("later", topic, func(*message.Message) error {
		if calls++; calls == 1 {
			return levee.Defer(1500*time.Millisecond, errors.New("downstream busy"))
		}
		close(done)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()
	if err := svc.Transport.Publisher.Publish(topic, message.NewMessage("m1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the message was not processed in 30s")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d deliveries, want 2 (the failed one and the delayed redelivery)", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Fatalf("redelivered after %s, before the 1.5s RetryAfter", gap)
	}
}
