//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/priority"
)

// soakYAML is the whole canonical stack on one handler and a batch handler.
func soakYAML(transport, store string) string {
	return fmt.Sprintf(`transport: %s
store: %s
schedulers:
  gw: {slots: 4, max_waiting: 1000}
handlers:
  work:
    tracing: {}
    metrics: true
    recover: true
    timeout: 150ms
    dlq: {retry: {max_attempts: 3, initial: 5ms, max: 20ms}}
    dedup: {store: shared, key: {metadata: order_id}, window: 1m}
    breaker: {consecutive_failures: 5, open_for: 500ms, drain: {window: 1s}}
    priority: {scheduler: gw}
    ratelimit: {rate: 500/s, burst: 50, key: {metadata: customer}, per_key: {rate: 20/s, burst: 5, max_keys: 200, idle: 2s}}
  batched:
    tracing: {}
    metrics: true
    recover: true
    timeout: 1s
    dlq: {retry: {max_attempts: 2, initial: 5ms, max: 20ms}}
    batch: {max_size: 10, max_wait: 50ms}
`, transport, store)
}

type permanent struct{ error }

func (permanent) ErrorClass() string { return "permanent" }

// soakLoad is what the handlers do: an outage fails every call with a
// transient error; poison payloads fail permanently or panic; slow ones
// time out.
type soakLoad struct {
	outage atomic.Bool
	done   atomic.Int64
}

func (l *soakLoad) handle(msg *message.Message) error {
	if l.outage.Load() {
		return errors.New("downstream down")
	}
	switch string(msg.Payload) {
	case "poison":
		return permanent{errors.New("poison")}
	case "panic":
		panic("poison panic")
	case "slow":
		select {
		case <-time.After(300 * time.Millisecond):
		case <-msg.Context().Done():
			return msg.Context().Err()
		}
	}
	l.done.Add(1)
	return nil
}

func (l *soakLoad) batch(_ context.Context, msgs []*message.Message) error {
	if l.outage.Load() {
		return errors.New("downstream down")
	}
	l.done.Add(int64(len(msgs)))
	return nil
}

type soakSample struct {
	at                             time.Duration
	heapMB                         float64
	goroutines, fds, conns, series int
	done, keys                     int64
}

func fdCount() int {
	fds, _ := os.ReadDir("/proc/self/fd")
	return len(fds)
}

// seriesCount is the number of data points the reader collects.
func seriesCount(t *testing.T, r *sdkmetric.ManualReader) int {
	n, _ := collectSeries(t, r)
	return n
}

// collectSeries returns the number of data points the reader collects
// and the live per-key buckets (levee.ratelimit.keys).
func collectSeries(t *testing.T, r *sdkmetric.ManualReader) (n int, keys int64) {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "levee.ratelimit.keys" {
				for _, dp := range g.DataPoints {
					keys += dp.Value
				}
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Sum[float64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[float64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[int64]:
				n += len(d.DataPoints)
			}
		}
	}
	return n, keys
}

// TestSoak runs the stack under key churn (a new rate-limit, dedup and
// priority key on most messages), a 3 s outage every 15 s (the breaker
// opens and drains), poison messages and timeouts, for LEVEE_SOAK (a
// duration; skipped when unset) per transport, restarting the service
// every LEVEE_SOAK_RESTART (shutdown hand-backs), and logs heap,
// goroutines, fds, connections, metric series and live rate-limit keys
// every 10 s. It asserts nothing: read the log for growth with time.
func TestSoak(t *testing.T) {
	d, _ := time.ParseDuration(os.Getenv("LEVEE_SOAK"))
	if d == 0 {
		t.Skip("LEVEE_SOAK unset")
	}
	only := os.Getenv("LEVEE_SOAK_TRANSPORT")
	prefix := brokertest.Name("soak")
	cases := soakCases(t, prefix, 8)
	for _, c := range cases {
		if only != "" && only != c.name {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			brokertest.SkipIfDown(t, fmt.Sprintf("127.0.0.1:%d", c.port))
			var ds dedup.Store
			if strings.Contains(c.store, "postgres") {
				s, err := pgdedup.Open(context.Background(), brokertest.PostgresURL(), pgdedup.WithTable(prefix+"_dedup"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					_ = s.Close()
					pgExec(t, "DROP TABLE IF EXISTS "+s.Table())
					pgExec(t, "DROP SCHEMA IF EXISTS "+prefix+" CASCADE")
				})
				ds = s
			} else {
				s, err := redisdedup.Open(context.Background(), brokertest.RedisURL(), prefix)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				ds = s
			}
			soakRun(t, soakYAML(c.transport, c.store), ds, c.port, d)
		})
	}
}

func soakRun(t *testing.T, yaml string, ds dedup.Store, port int, d time.Duration) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider() // no exporter: spans end and are dropped
	defer func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) }()
	topic := brokertest.Name("soak")
	load := &soakLoad{}
	deps := config.Deps{DedupStore: ds, MeterProvider: mp, TracerProvider: tp}
	start := func() (*service.Service, context.CancelFunc) { return cycleStart(t, yaml, deps, topic, load) }
	svc, cancel := start()
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	var cur atomic.Pointer[service.Service]
	cur.Store(svc)
	go func() { // about 100 messages a second
		defer close(pubDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			payload := "ok"
			switch r := rand.IntN(100); {
			case r < 2:
				payload = "poison"
			case r < 3:
				payload = "panic"
			case r < 5:
				payload = "slow"
			}
			m := message.NewMessage(watermill.NewUUID(), []byte(payload))
			cust := fmt.Sprintf("c%d", i) // churn: a new key on most messages
			if rand.IntN(5) == 0 {
				cust = fmt.Sprintf("hot%d", rand.IntN(10))
			}
			m.Metadata.Set("customer", cust)
			m.Metadata.Set("order_id", fmt.Sprintf("o%d", i))
			priority.Set(m, rand.IntN(10))
			tp := topic
			if i%4 == 0 {
				tp = topic + "_b"
			}
			_ = cur.Load().Transport.Publisher.Publish(tp, m)
		}
	}()
	t0 := time.Now()
	var samples []soakSample
	sample := func() {
		series, keys := collectSeries(t, reader)
		samples = append(samples, soakSample{time.Since(t0).Round(time.Second), float64(brokertest.HeapInUse()) / (1 << 20),
			runtime.NumGoroutine(), fdCount(), brokertest.ConnsTo(port), series, load.done.Load(), keys})
		s := samples[len(samples)-1]
		t.Logf("%6v heap %6.1f MB  goroutines %5d  fds %4d  conns %3d  series %4d  keys %4d  done %d", s.at, s.heapMB, s.goroutines, s.fds, s.conns, s.series, s.keys, s.done)
	}
	restartEvery := envDur("LEVEE_SOAK_RESTART", 0)
	lastRestart := time.Now()
	for time.Since(t0) < d {
		// an outage of 3 s every 15 s
		load.outage.Store(time.Since(t0)%(15*time.Second) > 12*time.Second)
		time.Sleep(time.Second)
		if int(time.Since(t0)/time.Second)%10 == 0 {
			sample()
		}
		if restartEvery > 0 && time.Since(lastRestart) > restartEvery {
			old := cur.Load()
			nsvc, ncancel := start()
			cur.Store(nsvc)
			if err := old.Close(); err != nil {
				t.Logf("close: %v", err)
			}
			cancel()
			cancel = ncancel
			lastRestart = time.Now()
		}
	}
	if f := os.Getenv("LEVEE_SOAK_HEAP"); f != "" { // a heap profile under load
		runtime.GC()
		if out, err := os.Create(f); err == nil {
			_ = pprof.WriteHeapProfile(out)
			_ = out.Close()
		}
	}
	close(stop)
	<-pubDone
	load.outage.Store(false)
	if err := cur.Load().Close(); err != nil {
		t.Logf("close: %v", err)
	}
	cancel()
	_ = cur.Load().Transport.DeleteTopics(context.Background(), topic, topic+"_b", topic+".dlq", topic+"_b.dlq")
	sample()
}

func envDur(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// soakCase is a transport of TestSoak and TestStartStopCycles, with the
// dead-letter store its service uses and the port its server listens on.
type soakCase struct {
	name, transport, store string
	port                   int
}

// soakCases returns the five broker transports at concurrency conc, each
// with a dead-letter store under prefix (PostgreSQL's own, Redis
// elsewhere), starting an in-process Kafka broker for the test; the
// test's cleanup deletes prefix's Redis keys.
func soakCases(t *testing.T, prefix string, conc int) []soakCase {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	kaddr := cluster.ListenAddrs()[0]
	kport, _ := strconv.Atoi(kaddr[strings.LastIndex(kaddr, ":")+1:])
	t.Cleanup(func() { redisDel(t, prefix) })
	redisStore := fmt.Sprintf("{kind: redis, url: %q, prefix: %s}", brokertest.RedisURL(), prefix)
	return []soakCase{
		{"amqp", fmt.Sprintf("{kind: amqp, concurrency: %d, amqp: {url: %q}}", conc, brokertest.AMQPURL()), redisStore, 5672},
		{"nats", fmt.Sprintf("{kind: nats, concurrency: %d, consumer_group: %s, nats: {url: %q}}", conc, prefix, brokertest.NATSURL()), redisStore, 4222},
		{"redis", fmt.Sprintf("{kind: redis, concurrency: %d, consumer_group: %s, redis: {addr: %q}}", conc, prefix, brokertest.RedisAddr()), redisStore, 6379},
		{"postgres", fmt.Sprintf("{kind: postgres, concurrency: %d, postgres: {url: %q, poll_interval: 20ms, max_conns: %d}}", conc, brokertest.PostgresURL(), 2*conc),
			fmt.Sprintf("{kind: postgres, url: %q, schema: %s}", brokertest.PostgresURL(), prefix), 5432},
		{"kafka", fmt.Sprintf("{kind: kafka, concurrency: %d, consumer_group: %s, kafka: {brokers: [%q]}}", conc, prefix, kaddr), redisStore, kport},
	}
}
