//go:build integration

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
)

// TestSoakKeepsMemoryBounded runs the canonical stack (tracing, metrics,
// recover, dlq with the PostgreSQL attempt store, dedup on Redis, breaker,
// priority, per-key rate limit, timeout) under hostile producers for
// LEVEE_SOAK (default 30s, 15s with -short): every message has a fresh UUID (some of 64 KiB,
// some not UTF-8), a fresh rate-limit key, a fresh dedup identity, a
// garbage or huge priority and trace context, and handlers that fail,
// panic and quote the message in their errors. After a warm-up that fills
// every bounded table, the heap, the goroutines, the metric series and
// the per-key buckets must stay where they were: Levee keeps what its
// bounds say, not what producers send.
func TestSoakKeepsMemoryBounded(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	brokertest.SkipIfDown(t, brokertest.PostgresURL())
	d := 30 * time.Second
	if testing.Short() {
		d = 15 * time.Second
	}
	if v := os.Getenv("LEVEE_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	s := newSoakStack(t)
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = s.h(hostileMessage(rng, w, i))
				sent.Add(1)
			}
		})
	}
	type sample struct {
		at               time.Duration
		heap             uint64
		goroutines, keys int
		series           int
		redisKeys, rows  int
	}
	var samples []sample
	start := time.Now()
	for i := 1; i <= 6; i++ {
		time.Sleep(d / 6)
		samples = append(samples, sample{time.Since(start).Round(time.Second), heapInUse(), runtime.NumGoroutine(), s.limiter.Keys(),
			s.series(t), s.redisKeys(t), s.attemptRows(t)})
		c := samples[i-1]
		t.Logf("%s: %d messages, heap %d KiB, %d goroutines, %d rate-limit keys, %d metric series, %d attempt table entries, %d dedup keys in Redis, %d attempt rows in PostgreSQL",
			c.at, sent.Load(), c.heap>>10, c.goroutines, c.keys, c.series, s.retrier.Pending(), c.redisKeys, c.rows)
	}
	close(stop)
	wg.Wait()
	warm, last := samples[1], samples[len(samples)-1]
	if limit := warm.heap + warm.heap/2 + 16<<20; last.heap > limit {
		t.Errorf("heap grew from %d KiB (after warm-up) to %d KiB, want at most %d KiB", warm.heap>>10, last.heap>>10, limit>>10)
	}
	if last.goroutines > warm.goroutines+16 {
		t.Errorf("goroutines grew from %d to %d", warm.goroutines, last.goroutines)
	}
	// Rare outcomes add a few series late; an attribute with a value from
	// the messages would add thousands.
	if last.series > 2*warm.series+16 {
		t.Errorf("metric series grew from %d to %d: an attribute takes a value from the messages", warm.series, last.series)
	}
	if last.redisKeys > 2*warm.redisKeys+1000 || last.rows > 2*warm.rows+1000 {
		t.Errorf("stores grew: dedup keys in Redis %d to %d, attempt rows in PostgreSQL %d to %d (expiry does not keep up)",
			warm.redisKeys, last.redisKeys, warm.rows, last.rows)
	}
	if last.keys > soakMaxKeys {
		t.Errorf("rate-limit keys: %d, want at most max_keys %d", last.keys, soakMaxKeys)
	}
	if sent.Load() < 1000 {
		t.Errorf("only %d messages in %s: the soak did not run", sent.Load(), d)
	}
}

const soakMaxKeys = 500

type soakStack struct {
	h       message.HandlerFunc
	limiter *ratelimit.Limiter
	retrier *dlq.Retrier
	reader  *sdkmetric.ManualReader
	rc      *redis.Client
	prefix  string
	pg      *pgstore.Store
	schema  string
}

// redisKeys counts the dedup store's keys in Redis.
func (s *soakStack) redisKeys(t *testing.T) int {
	n := 0
	iter := s.rc.Scan(context.Background(), 0, s.prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// attemptRows counts the attempt store's rows, expired ones included.
func (s *soakStack) attemptRows(t *testing.T) int {
	var n int
	if err := s.pg.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+s.schema+`.attempts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// series counts the metric data points (one per attribute set).
func (s *soakStack) series(t *testing.T) int {
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[float64]:
				n += len(d.DataPoints)
			}
		}
	}
	return n
}

func newSoakStack(t *testing.T) *soakStack {
	t.Helper()
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) })
	tr := must(tracing.New(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(mp)))(t)
	metrics := must(tracing.NewMetrics(tracing.WithMeterProvider(mp)))(t)

	schema := brokertest.Fresh(t, "levee_soak", func(name string) error {
		s, err := pgstore.Open(ctx, brokertest.PostgresURL(), pgstore.WithSchema(name), pgstore.WithoutMigrate())
		if err != nil {
			return err
		}
		defer s.Close()
		_, err = s.Pool().Exec(ctx, `DROP SCHEMA IF EXISTS `+name+` CASCADE`)
		return err
	})
	pg := must(pgstore.Open(ctx, brokertest.PostgresURL(), pgstore.WithSchema(schema)))(t)
	t.Cleanup(func() { _ = pg.Close() })
	retrier := must(dlq.New(discard{}, dlq.WithTopic("soak.dlq"), dlq.WithMeterProvider(mp), dlq.WithMaxHold(5*time.Millisecond),
		dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2, MaxAttempts: 3}),
		dlq.WithAttemptStore(pg.Attempts()), dlq.WithAttemptTTL(2*time.Second), dlq.WithAttemptTableSize(1000)))(t)

	rc := redis.NewClient(&redis.Options{Addr: brokertest.RedisAddr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	prefix := brokertest.Name("levee:soak") + ":"
	store := must(redisdedup.New(rc, prefix))(t)
	key := must(dedup.MetadataKey("order"))(t)
	dd := must(dedup.New(dedup.WithStore(store), dedup.WithKeyFunc(key), dedup.WithLease(5*time.Second),
		dedup.WithWindow(2*time.Second), dedup.WithMeterProvider(mp)))(t)

	br := must(breaker.New(breaker.WithFailureRatio(0.9, 1000), breaker.WithMeterProvider(mp)))(t)
	t.Cleanup(func() { _ = br.Close() })
	sched := must(priority.NewScheduler(priority.WithSlots(4), priority.WithMaxWaiting(64), priority.WithMaxWait(20*time.Millisecond),
		priority.WithMeterProvider(mp)))(t)
	t.Cleanup(func() { _ = sched.Close() })
	lim := must(ratelimit.New(ratelimit.WithKeyMetadata("customer"), ratelimit.WithPerKey(200, 2),
		ratelimit.WithMaxKeys(soakMaxKeys), ratelimit.WithMaxWait(5*time.Millisecond),
		ratelimit.WithMeterProvider(mp)))(t)
	t.Cleanup(func() { _ = lim.Close() })
	timeout := must(middleware.NewTimeout(time.Second))(t)

	stack := middleware.NewStack().Tracing(tr.Middleware).Metrics(metrics.Middleware).Recover(middleware.Recover).
		DLQ(retrier.Middleware).Dedup(dd.Middleware).Breaker(br.Middleware).Priority(sched.Middleware).
		RateLimit(lim.Middleware).Timeout(timeout.Middleware)
	return &soakStack{h: stack.Middleware(soakHandler), limiter: lim, retrier: retrier, reader: reader,
		rc: rc, prefix: prefix, pg: pg, schema: schema}
}

// soakHandler fails, panics and quotes the message in its errors, as
// real handlers do, by the producer's "kind".
func soakHandler(m *message.Message) ([]*message.Message, error) {
	switch m.Metadata.Get("kind") {
	case "transient":
		return nil, fmt.Errorf("order %s: downstream busy", m.Metadata.Get("order"))
	case "permanent":
		return nil, dlq.Permanent(fmt.Errorf("customer %q refused", m.Metadata.Get("customer")))
	case "panic":
		panic("bad order " + m.Metadata.Get("order"))
	case "defer":
		return nil, levee.Defer(time.Hour, errors.New("downstream 429"))
	}
	return nil, nil
}

var soakKinds = []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "transient", "permanent", "panic", "defer"}

// hostileMessage is what a hostile or careless producer sends: every key
// new, some values huge or not UTF-8.
func hostileMessage(rng *rand.Rand, w, i int) *message.Message {
	uuid := fmt.Sprintf("%d-%d-%d", w, i, rng.Uint64())
	switch rng.IntN(16) {
	case 0:
		uuid += strings.Repeat("u", 64<<10)
	case 1:
		uuid += "\xff\x00\n"
	}
	m := message.NewMessage(uuid, []byte(`{"order":1}`))
	m.Metadata.Set("kind", soakKinds[rng.IntN(len(soakKinds))])
	m.Metadata.Set("customer", "c-"+strconv.FormatUint(rng.Uint64(), 36)+"\n\xfe")
	m.Metadata.Set("order", uuid[:min(len(uuid), 64)])
	m.Metadata.Set(levee.KeyPriority, []string{"3", "9", "-7", "99999999999999999999", "x\n", strings.Repeat("9", 4096)}[rng.IntN(6)])
	m.Metadata.Set("traceparent", []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "garbage\n", strings.Repeat("0", 8192)}[rng.IntN(3)])
	m.Metadata.Set("tracestate", strings.Repeat("k=v,", rng.IntN(4096)))
	m.Metadata.Set("baggage", strings.Repeat("a=b,", rng.IntN(4096)))
	for k := range rng.IntN(64) {
		m.Metadata.Set("x-"+strconv.Itoa(k)+"-"+strconv.Itoa(i), "v")
	}
	return m
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

type discard struct{}

func (discard) Publish(string, ...*message.Message) error { return nil }
func (discard) Close() error                              { return nil }
