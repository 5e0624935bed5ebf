//go:build unix

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/middleware"
)

// The outage-and-drain scenario over real brokers: drainCPUMessages
// messages are published, the handler's downstream is down for
// drainCPUOutage from the moment the router starts, and the run ends when
// every message was handled once with success.
const (
	drainCPUMessages    = 1000
	drainCPUOutage      = 2 * time.Second
	drainCPUConcurrency = 8
	drainCPUOpenFor     = 500 * time.Millisecond
)

type drainCPUResult struct {
	cpu        time.Duration // client (process) CPU from the router's start to the last message
	outageCPU  time.Duration // the part of cpu spent during the outage
	wall       time.Duration
	deliveries int64 // handler-chain entries, redeliveries included
	calls      int64 // downstream calls
}

// drainCPUChain is one contender: the handler chain around the downstream.
type drainCPUChain func(tb testing.TB, tr *adapters.Transport, topic string, next message.HandlerFunc) (message.HandlerFunc, func())

// drainCPULevee is recover, dlq (retry with backoff) and the breaker (5
// consecutive failures, open 500ms, a drain of 1s from 10% of 2,000/s),
// with the transport's RetryAfter middleware, as config.Apply builds them.
func drainCPULevee(tb testing.TB, tr *adapters.Transport, topic string, next message.HandlerFunc) (message.HandlerFunc, func()) {
	d, err := dlq.New(tr.Publisher, dlq.WithTopic(topic+"_dlq"), dlq.WithMaxHold(tr.Capabilities.AckDeadline*8/10),
		dlq.WithBackoff(dlq.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2, MaxAttempts: 20}))
	if err != nil {
		tb.Fatal(err)
	}
	br, err := breaker.New(breaker.WithConsecutiveFailures(5), breaker.WithOpenFor(drainCPUOpenFor),
		breaker.WithDrain(time.Second, 0.1, 1), breaker.WithDrainRate(2000),
		breaker.WithMaxHold(tr.Capabilities.AckDeadline*8/10))
	if err != nil {
		tb.Fatal(err)
	}
	h := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Breaker(br.Middleware).Middleware(next)
	return tr.Middleware(h), func() { _ = br.Close() }
}

// drainCPUWatermill is Watermill's Retry (5 retries from 20ms, doubling,
// at most 500ms) around its CircuitBreaker (5 consecutive failures, open
// 500ms): while open, every delivery fails fast through the retries and is
// Nacked.
func drainCPUWatermill(tb testing.TB, _ *adapters.Transport, _ string, next message.HandlerFunc) (message.HandlerFunc, func()) {
	retry := wmw.Retry{MaxRetries: 5, InitialInterval: 20 * time.Millisecond, MaxInterval: 500 * time.Millisecond,
		Multiplier: 2, Logger: watermill.NopLogger{}}
	cb := breakerWatermill(5, drainCPUOpenFor)
	return middleware.Chain(wmw.Recoverer, retry.Middleware, cb.Middleware)(next), func() {}
}

// drainCPURun runs the scenario once over a fresh topic of the transport
// built from opts.
func drainCPURun(tb testing.TB, opts []adapters.Option, chain drainCPUChain) (drainCPUResult, error) {
	opts = append(append([]adapters.Option(nil), opts...), adapters.WithConcurrency(drainCPUConcurrency),
		adapters.WithConsumerGroup("bench-drain-"+watermill.NewShortUUID()))
	tr, err := adapters.New(context.Background(), opts...)
	if err != nil {
		return drainCPUResult{}, adaptersStackUnreachable{err}
	}
	defer tr.Close()
	topic := "bench_drain_" + strings.ToLower(watermill.NewShortUUID())
	if si, ok := tr.Subscriber.(message.SubscribeInitializer); ok {
		if err := si.SubscribeInitialize(topic); err != nil {
			return drainCPUResult{}, err
		}
	}
	for i := 0; i < drainCPUMessages; i++ {
		if err := tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))); err != nil {
			return drainCPUResult{}, err
		}
	}
	var (
		res       drainCPUResult
		deliv     atomic.Int64
		calls     atomic.Int64
		processed atomic.Int64
		seen      sync.Map
		allDone   = make(chan struct{})
		downUntil atomic.Int64 // unix ns
	)
	downUntil.Store(time.Now().Add(time.Hour).UnixNano()) // down until the router starts
	downstream := func(msg *message.Message) ([]*message.Message, error) {
		calls.Add(1)
		if time.Now().UnixNano() < downUntil.Load() {
			return nil, errBreakerDown
		}
		if _, dup := seen.LoadOrStore(msg.UUID, true); !dup && processed.Add(1) == drainCPUMessages {
			close(allDone)
		}
		return nil, nil
	}
	h, closeChain := chain(tb, tr, topic, downstream)
	defer closeChain()
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
	if err != nil {
		return res, err
	}
	r.AddConsumerHandler("payments", topic, tr.Subscriber, func(msg *message.Message) error {
		deliv.Add(1)
		_, err := h(msg)
		return err
	})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	cpu0, t0 := breakerCPU(), time.Now()
	downUntil.Store(t0.Add(drainCPUOutage).UnixNano())
	go func() { defer close(runDone); _ = r.Run(ctx) }()
	outageCPU := make(chan time.Duration, 1)
	time.AfterFunc(drainCPUOutage, func() { outageCPU <- breakerCPU() - cpu0 })
	select {
	case <-allDone:
	case <-time.After(2 * time.Minute):
		cancel()
		<-runDone
		return res, fmt.Errorf("processed %d of %d messages in 2 minutes", processed.Load(), drainCPUMessages)
	}
	res.cpu, res.wall = breakerCPU()-cpu0, time.Since(t0)
	res.deliveries, res.calls = deliv.Load(), calls.Load()
	res.outageCPU = <-outageCPU
	cancel()
	<-runDone
	return res, nil
}

// BenchmarkBreakerDrainCPU is the outage-and-drain scenario over RabbitMQ
// and NATS JetStream on loopback: 1,000 messages, the downstream down for
// 2 s, 8 messages in flight. Levee (recover, dlq retry, breaker with a
// drain) against Watermill's Retry around its CircuitBreaker, on the same
// messages, alternating which goes first. It reports the client CPU (this
// process's user+system time, from getrusage) from the router's start to
// the last message handled, the wall time, the deliveries (redeliveries
// included) and the downstream calls, per run. It runs only with
// LEVEE_BENCH_BROKERS=1 and skips a transport whose server is down.
func BenchmarkBreakerDrainCPU(b *testing.B) {
	if os.Getenv("LEVEE_BENCH_BROKERS") != "1" {
		b.Skip("set LEVEE_BENCH_BROKERS=1 to run against the brokers on loopback")
	}
	for _, k := range []struct {
		name string
		opts []adapters.Option
	}{
		{"amqp", []adapters.Option{adapters.WithAMQP(brokertest.AMQPURL())}},
		{"nats", []adapters.Option{adapters.WithNATS(brokertest.NATSURL())}},
	} {
		b.Run(k.name, func(b *testing.B) {
			chains := []struct {
				name  string
				chain drainCPUChain
			}{{"levee", drainCPULevee}, {"watermill", drainCPUWatermill}}
			sums := make([]drainCPUResult, len(chains))
			i := 0
			for b.Loop() {
				for j := range chains {
					c := (j + i) % len(chains) // alternate the order
					r, err := drainCPURun(b, k.opts, chains[c].chain)
					var unreachable adaptersStackUnreachable
					if errors.As(err, &unreachable) {
						b.Skip(err)
					}
					if err != nil {
						b.Fatalf("%s: %v", chains[c].name, err)
					}
					s := &sums[c]
					s.cpu += r.cpu
					s.outageCPU += r.outageCPU
					s.wall += r.wall
					s.deliveries += r.deliveries
					s.calls += r.calls
				}
				i++
			}
			n := float64(b.N)
			for c, s := range sums {
				name := chains[c].name
				b.ReportMetric(s.cpu.Seconds()*1000/n, name+"_cpu_ms/op")
				b.ReportMetric(s.outageCPU.Seconds()*1000/n, name+"_outage_cpu_ms/op")
				b.ReportMetric(s.wall.Seconds()/n, name+"_wall_s/op")
				b.ReportMetric(float64(s.deliveries)/n, name+"_deliveries/op")
				b.ReportMetric(float64(s.calls)/n, name+"_calls/op")
			}
		})
	}
}
