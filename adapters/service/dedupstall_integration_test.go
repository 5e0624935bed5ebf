//go:build integration

package service_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestDedupRedisStallWholeStack: a service over RabbitMQ with recover,
// dlq, dedup on Redis, breaker, priority and rate limit; every message is
// published twice (one UUID) and fails its first attempt; the Redis dedup
// store stops answering for 2 s (a proxy holds its replies back, the
// commands still run) while the messages flow. Each message's side
// effect must happen exactly once, nothing may be dead-lettered, and the
// duplicates counted must be the second copies.
func TestDedupRedisStallWholeStack(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.AMQPURL())
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	ctx := context.Background()
	prefix := brokertest.Name("levee_ddstall")
	proxy := brokertest.NewStallProxy(t, brokertest.RedisAddr())
	store, err := redisdedup.Open(ctx, "redis://"+proxy.Addr()+"/0", prefix+":")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(); redisDel(t, prefix) }()
	y := fmt.Sprintf(`transport: {kind: amqp, concurrency: 8, amqp: {url: %q}}
schedulers:
  down: {slots: 4, aging: 50ms, max_waiting: 100, max_wait: 200ms, retry_after: 20ms}
handlers:
  pay:
    recover: true
    dlq:
      retry: {max_attempts: 5, initial: 5ms, max: 20ms}
      max_hold: 300ms
    dedup: {store: shared, lease: 5s, store_timeout: 200ms, busy_retry: 100ms}
    breaker:
      consecutive_failures: 50
      open_for: 300ms
      half_open_probes: 1
      max_hold: 300ms
    priority: {scheduler: down}
    ratelimit: {rate: 500/s, burst: 20}
`, brokertest.AMQPURL())
	pub := &countingPublisher{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	svc, err := service.New(ctx, parse(t, y), config.Deps{Publisher: pub, DedupStore: store, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	pub.inner = svc.Transport.Publisher
	defer svc.Close()
	topic := prefix
	const n = 200
	var (
		mu       sync.Mutex
		attempts = map[string]int{}
		effects  = map[string]int{}
		done     = make(chan struct{})
	)
	svc.Handle("pay", topic, func(m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[m.UUID]++
		if attempts[m.UUID] == 1 {
			return fmt.Errorf("transient")
		}
		effects[m.UUID]++
		if len(effects) == n && effects[m.UUID] == 1 {
			close(done)
		}
		return nil
	})
	rctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); _ = svc.Run(rctx) }()
	defer func() {
		cancel()
		<-ran
		_ = svc.Transport.DeleteTopics(context.Background(), topic, topic+".dlq")
	}()
	<-svc.Running()
	var stalls atomic.Bool
	go func() {
		time.Sleep(150 * time.Millisecond)
		proxy.SetStall(true)
		stalls.Store(true)
		time.Sleep(2 * time.Second)
		proxy.SetStall(false)
	}()
	for i := range n {
		m := message.NewMessage(fmt.Sprintf("m%03d", i), []byte("{}"))
		if err := svc.Transport.Publisher.Publish(topic, m, m.Copy()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
	}
	time.Sleep(2 * time.Second) // late duplicates
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, c := range effects {
		if c > 1 {
			twice++
		}
	}
	st := dedupCounts(t, reader)
	t.Logf("effects: %d of %d, %d more than once; dead letters: %d; dedup counters %v", len(effects), n, twice, pub.n.Load(), st)
	if len(effects) != n || twice != 0 {
		t.Errorf("side effects of %d messages (%d more than once), want %d exactly once", len(effects), twice, n)
	}
	if pub.n.Load() != 0 {
		t.Errorf("dead letters: %d, want 0", pub.n.Load())
	}
	if st["levee.dedup.duplicates"] != n {
		t.Errorf("duplicates counted: %d, want %d (the second copy of each)", st["levee.dedup.duplicates"], n)
	}
}

// dedupCounts returns the dedup counters' sums by name.
func dedupCounts(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && len(m.Name) > 12 && m.Name[:12] == "levee.dedup." {
				for _, dp := range sum.DataPoints {
					got[m.Name] += dp.Value
				}
			}
		}
	}
	return got
}
