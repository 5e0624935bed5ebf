package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/middleware"
)

// adaptersStackMessages is the number of messages per measurement
// (LEVEE_BENCH_STACK_MESSAGES overrides it).
const adaptersStackMessages = 600

// adaptersStackConcurrency is the consumer concurrency of every transport.
const adaptersStackConcurrency = 8

// BenchmarkAdaptersStack compares, per transport, the throughput of a
// Watermill router consuming with a bare handler doing 1 ms of (simulated)
// work against the same handler behind the full Levee stack built by
// middleware.NewStack (recover, dlq, breaker, timeout), on the real brokers
// on loopback (kfake for Kafka), concurrency 8. Each iteration measures
// bare and stack once each, alternating which goes first, over
// adaptersStackMessages messages published before the router starts; the
// time runs from the first handled message to the last, so connection and
// consumer-group set-up are not counted. It reports bare_msg/s,
// stack_msg/s and their ratio (stack/bare; the target is >= 0.95).
// It runs only with LEVEE_BENCH_BROKERS=1 and skips unreachable transports.
func BenchmarkAdaptersStack(b *testing.B) {
	if os.Getenv("LEVEE_BENCH_BROKERS") != "1" {
		b.Skip("set LEVEE_BENCH_BROKERS=1 to run against the brokers on loopback")
	}
	msgs := adaptersStackMessages
	if v, err := strconv.Atoi(os.Getenv("LEVEE_BENCH_STACK_MESSAGES")); err == nil && v > 1 {
		msgs = v
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	kinds := []struct {
		name string
		opts []adapters.Option
	}{
		{"gochannel", []adapters.Option{adapters.WithGoChannelPersistent(true)}},
		{"amqp", []adapters.Option{adapters.WithAMQP(brokertest.AMQPURL())}},
		{"kafka", []adapters.Option{adapters.WithKafka(cluster.ListenAddrs()...)}},
		{"nats", []adapters.Option{adapters.WithNATS(brokertest.NATSURL())}},
		{"redis", []adapters.Option{adapters.WithRedis(brokertest.RedisAddr())}},
		{"postgres", []adapters.Option{
			adapters.WithPostgres(brokertest.PostgresURL()),
			adapters.WithPostgresPollInterval(10 * time.Millisecond),
			adapters.WithPostgresMaxConns(2*adaptersStackConcurrency + 4),
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			var bare, stack time.Duration
			i := 0
			for b.Loop() {
				// Alternate the order so drift on a shared machine
				// (broker caches, other load) does not favour one side.
				first, second := false, true
				if i%2 == 1 {
					first, second = true, false
				}
				i++
				for _, withStack := range []bool{first, second} {
					d, err := adaptersStackRun(k.name, k.opts, withStack, msgs)
					var unreachable adaptersStackUnreachable
					if errors.As(err, &unreachable) {
						b.Skip(err)
					}
					if err != nil {
						b.Fatal(err)
					}
					if withStack {
						stack += d
					} else {
						bare += d
					}
				}
			}
			bareRate := float64(b.N*(msgs-1)) / bare.Seconds()
			stackRate := float64(b.N*(msgs-1)) / stack.Seconds()
			b.ReportMetric(bareRate, "bare_msg/s")
			b.ReportMetric(stackRate, "stack_msg/s")
			b.ReportMetric(stackRate/bareRate, "ratio")
		})
	}
}

// adaptersStackUnreachable is the error of a transport that could not be
// built (server down): the benchmark skips it.
type adaptersStackUnreachable struct{ err error }

func (e adaptersStackUnreachable) Error() string { return e.err.Error() }

// adaptersStackRun builds a transport, publishes msgs messages, consumes
// them through a router (bare handler or full stack) and returns the time
// from the first handled message to the last. An adaptersStackUnreachable
// error means the transport could not be built (the caller skips).
func adaptersStackRun(kind string, base []adapters.Option, withStack bool, msgs int) (time.Duration, error) {
	opts := append(append([]adapters.Option(nil), base...), adapters.WithConcurrency(adaptersStackConcurrency))
	if kind != "postgres" && kind != "gochannel" {
		opts = append(opts, adapters.WithConsumerGroup("bench-stack-"+watermill.NewShortUUID()))
	}
	tr, err := adapters.New(context.Background(), opts...)
	if err != nil {
		return 0, adaptersStackUnreachable{fmt.Errorf("%s: %w", kind, err)}
	}
	defer tr.Close()
	topic := "bench_stack_" + strings.ToLower(watermill.NewShortUUID())
	if si, ok := tr.Subscriber.(message.SubscribeInitializer); ok {
		if err := si.SubscribeInitialize(topic); err != nil {
			return 0, fmt.Errorf("%s: %w", kind, err)
		}
	}
	for i := 0; i < msgs; i++ {
		if err := tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))); err != nil {
			return 0, fmt.Errorf("%s: publish: %w", kind, err)
		}
	}

	var (
		handled     atomic.Int64
		mu          sync.Mutex
		first, last time.Time
		done        = make(chan struct{})
	)
	h := func(*message.Message) ([]*message.Message, error) {
		time.Sleep(time.Millisecond)
		now := time.Now()
		mu.Lock()
		if first.IsZero() {
			first = now
		}
		last = now
		mu.Unlock()
		if handled.Add(1) == int64(msgs) {
			close(done)
		}
		return nil, nil
	}
	if withStack {
		d, err := dlq.New(tr.Publisher)
		if err != nil {
			return 0, err
		}
		brk, err := breaker.New(breaker.WithMaxHold(10 * time.Second))
		if err != nil {
			return 0, err
		}
		defer brk.Close()
		timeout, err := middleware.NewTimeout(5 * time.Second)
		if err != nil {
			return 0, err
		}
		h = middleware.NewStack().
			Recover(middleware.Recover).
			DLQ(d.Middleware).
			Breaker(brk.Middleware).
			Timeout(timeout.Middleware).
			Middleware(h)
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
	if err != nil {
		return 0, err
	}
	router.AddConsumerHandler("bench", topic, tr.Subscriber, func(msg *message.Message) error {
		_, err := h(msg)
		return err
	})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = router.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("%s: handled %d of %d messages in 2 minutes", kind, handled.Load(), msgs)
	}
	mu.Lock()
	defer mu.Unlock()
	return last.Sub(first), nil
}
