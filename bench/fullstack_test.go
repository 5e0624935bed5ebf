package bench

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	gobreakerv1 "github.com/sony/gobreaker"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// fullStackLevee is the canonical stack of every concern but telemetry
// and batching: recover, dlq, breaker (failure ratio), priority,
// ratelimit (unlimited) and timeout.
func fullStackLevee(b *testing.B, timeout bool) message.HandlerFunc {
	b.Helper()
	d, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"))
	if err != nil {
		b.Fatal(err)
	}
	br, err := breaker.New(breaker.WithFailureRatio(0.5, 20))
	if err != nil {
		b.Fatal(err)
	}
	s, err := priority.NewScheduler(priority.WithSlots(64))
	if err != nil {
		b.Fatal(err)
	}
	l, err := ratelimit.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.Close(); _ = s.Close(); _ = l.Close() })
	st := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Breaker(br.Middleware).
		Priority(s.Middleware).RateLimit(l.Middleware)
	if timeout {
		to, err := middleware.NewTimeout(2 * time.Second)
		if err != nil {
			b.Fatal(err)
		}
		st = st.Timeout(to.Middleware)
	}
	return st.Middleware(middlewareNoop)
}

// fullStackWatermill is Watermill's equivalent chain: Recoverer,
// PoisonQueue, Retry and CircuitBreaker (and its Timeout).
func fullStackWatermill(b *testing.B, timeout bool) message.HandlerFunc {
	b.Helper()
	pq, err := wmw.PoisonQueue(dlqNopPublisher{}, "orders.dlq")
	if err != nil {
		b.Fatal(err)
	}
	retry := wmw.Retry{MaxRetries: 4, InitialInterval: 100 * time.Millisecond, MaxInterval: 10 * time.Second,
		Multiplier: 2, Logger: watermill.NopLogger{}}
	cb := wmw.NewCircuitBreaker(gobreakerv1.Settings{Name: "bench"})
	mws := []message.HandlerMiddleware{wmw.Recoverer, pq, retry.Middleware, cb.Middleware}
	if timeout {
		mws = append(mws, wmw.Timeout(2*time.Second))
	}
	return middleware.Chain(mws...)(middlewareNoop)
}

// BenchmarkFullStackSuccess is the success path of the whole canonical
// stack (tracing and metrics off), with and without the timeout slot,
// against a bare handler and Watermill's equivalent chain, in one run.
// Every call gets a fresh message with a cancelable context, as a router
// gives, so the bare row is the cost of that delivery.
func BenchmarkFullStackSuccess(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    func(*testing.B) message.HandlerFunc
	}{
		{"bare", func(*testing.B) message.HandlerFunc { return middlewareNoop }},
		{"levee", func(b *testing.B) message.HandlerFunc { return fullStackLevee(b, false) }},
		{"levee_timeout", func(b *testing.B) message.HandlerFunc { return fullStackLevee(b, true) }},
		{"watermill", func(b *testing.B) message.HandlerFunc { return fullStackWatermill(b, false) }},
		{"watermill_timeout", func(b *testing.B) message.HandlerFunc { return fullStackWatermill(b, true) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.h(b)
			payload := []byte(`{"id":1}`)
			b.ReportAllocs()
			for b.Loop() {
				msg := message.NewMessage("bench", payload)
				ctx, cancel := context.WithCancel(context.Background())
				msg.SetContext(ctx)
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
		})
		b.Run(bc.name+"_parallel", func(b *testing.B) {
			h := bc.h(b)
			payload := []byte(`{"id":1}`)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					msg := message.NewMessage("bench", payload)
					ctx, cancel := context.WithCancel(context.Background())
					msg.SetContext(ctx)
					if _, err := h(msg); err != nil {
						b.Error(err)
						cancel()
						return
					}
					cancel()
				}
			})
		})
	}
}
