//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// toYAML is the stack of TestTelemetryOfAServiceUnderStoreOutages: every
// per-message concern on one handler, its fleet limit and its dedup
// store each behind a proxy the test stalls.
const toYAML = `transport: %s
fleet: {store: "redis://%s/0", prefix: %q}
handlers:
  pay:
    tracing: {}
    metrics: true
    recover: true
    timeout: 300ms
    dlq: {retry: {max_attempts: 2, initial: 20ms, max: 20ms}, max_hold: 400ms}
    dedup: {store: shared, key: {metadata: order_id}, store_timeout: 200ms, busy_retry: 100ms}
    breaker:
      consecutive_failures: 5
      open_for: 500ms
      max_hold: 300ms
      drain: {window: 1s, start: 20%%, rate: 200/s}
    priority: {scheduler: shared}
    ratelimit: {rate: 300/s, burst: 5}
    fleet: {store_timeout: 200ms, ratelimit: {rate: 400/s}}
schedulers:
  shared: {slots: 4}
`

// TestTelemetryOfAServiceUnderStoreOutages runs a service built from a
// levee.yaml with every per-message concern (tracing, metrics, recover,
// timeout, dlq, dedup on Redis, a fleet rate limit on Redis, a breaker
// with a drain, priority, a rate limit) over every durable transport,
// through a downstream outage (the breaker opens and drains), poison
// messages, panics, handler overruns past the timeout, duplicates, and a
// stall of the dedup store and of the fleet store. Each metric is checked
// against what the router saw of each delivery and what the dead-letter
// store holds: one count per delivery in the outcome it had, no deferral
// counted as a failure, histogram counts equal to the counters, gauges
// back to 0, one consumer span per delivery with the same outcome.
func TestTelemetryOfAServiceUnderStoreOutages(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	onEachTransport(t, 2, toRun)
}

// toMessages are what toRun publishes: kind -> count.
var toMessages = map[string]int{"ok": 60, "poison": 3, "panic": 2, "slow": 2, "dup": 5}

// toEnv is a service of toYAML with its telemetry, its stores' proxies
// and what the router saw.
type toEnv struct {
	svc                    *service.Service
	reader                 *sdkmetric.ManualReader
	sr                     *tracetest.SpanRecorder
	res                    *toResults
	fleetProxy, dedupProxy *brokertest.StallProxy
	outageEnd              atomic.Int64
	topic                  string
	ran                    chan error
	cancel                 context.CancelFunc
}

// toStart builds and runs a service of toYAML over transport; the
// test's cleanups stop it.
func toStart(t *testing.T, transport string, settled func(t *testing.T)) *toEnv {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := &toEnv{reader: reader, sr: sr, res: &toResults{handler: "pay", effects: map[string]int{}},
		fleetProxy: brokertest.NewStallProxy(t, brokertest.RedisAddr()), dedupProxy: brokertest.NewStallProxy(t, brokertest.RedisAddr()),
		topic: brokertest.Name("svc_tel_outage"), ran: make(chan error, 1)}
	rc := redis.NewClient(&redis.Options{Addr: e.dedupProxy.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true}) // docs/DEDUP.md
	t.Cleanup(func() { _ = rc.Close() })
	ds, err := redisdedup.New(rc, brokertest.Name("to_dedup")+":")
	if err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(toYAML, transport, e.fleetProxy.Addr(), brokertest.Name("to_fleet"))
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{MeterProvider: mp, TracerProvider: tp, DedupStore: ds})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	t.Cleanup(func() {
		_ = svc.Router.Close()
		_ = svc.Transport.DeleteTopics(context.Background(), e.topic, dlq.DefaultTopic(e.topic))
		_ = svc.Close()
	})
	svc.WatchDeadLetters = true
	svc.Router.AddMiddleware(e.res.track)
	res := e.res
	svc.Handle("pay", e.topic, func(msg *message.Message) error {
		res.mu.Lock()
		res.call++
		res.mu.Unlock()
		switch msg.Metadata.Get("kind") {
		case "poison":
			return dlq.Permanent(errors.New("bad order"))
		case "panic":
			panic("bad order")
		case "slow":
			<-msg.Context().Done()
			return msg.Context().Err()
		}
		if time.Now().UnixNano() < e.outageEnd.Load() {
			return errors.New("downstream down")
		}
		res.mu.Lock()
		res.effects[msg.Metadata.Get("order_id")]++
		res.mu.Unlock()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.ran <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-e.ran })
	<-svc.Running()
	if settled != nil {
		settled(t)
	}
	return e
}

func toRun(t *testing.T, transport string, settled func(t *testing.T)) {
	e := toStart(t, transport, settled)
	rerun := toDrive(t, e.svc, e.reader, e.topic, e.res, &e.outageEnd, e.fleetProxy, e.dedupProxy)
	toCheck(t, e.svc, e.reader, e.sr, e.res, rerun)
}

// toDrive publishes toMessages in three phases and waits until each
// message had its end (the ok ones and duplicates their effect, the
// others a dead letter): a downstream outage with the poison, panicking
// and slow messages; a stall of the dedup store; a stall of the fleet
// store. It returns the duplicates whose original was dead-lettered (the
// handler runs for them).
func toDrive(t *testing.T, svc *service.Service, reader *sdkmetric.ManualReader, topic string, res *toResults,
	outageEnd *atomic.Int64, fleetProxy, dedupProxy *brokertest.StallProxy) (rerun int) {
	pub := func(kind string, id int) {
		m := message.NewMessage(watermill.NewUUID(), []byte(kind))
		m.Metadata.Set("kind", kind)
		m.Metadata.Set("order_id", fmt.Sprintf("o%d", id))
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	third := toMessages["ok"] / 3
	outageEnd.Store(time.Now().Add(1500 * time.Millisecond).UnixNano())
	for i := range third {
		pub("ok", i)
	}
	for kind, base := range map[string]int{"poison": 1000, "panic": 2000, "slow": 3000} {
		for i := range toMessages[kind] {
			pub(kind, base+i)
		}
	}
	toSettle(t, svc, res, third)
	// While a store is stalled, messages keep coming until the outage is
	// counted: a limiter that holds leased tokens calls its store only
	// when they run out.
	stalled := func(p *brokertest.StallProxy, from int, metric string) int {
		p.SetStall(true)
		next := from
		for end := time.Now().Add(30 * time.Second); next < from+third || toSum(smPoints(t, reader), metric) == 0; next++ {
			if time.Now().After(end) {
				t.Fatalf("%s not counted in 30 s of a stalled store", metric)
			}
			pub("ok", next)
			if next >= from+third {
				time.Sleep(100 * time.Millisecond)
			}
		}
		p.SetStall(false)
		toSettle(t, svc, res, next)
		return next
	}
	stalled(fleetProxy, stalled(dedupProxy, third, "levee.dedup.store.errors"), "levee.fleet.fallbacks")
	letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	lettered := map[string]bool{}
	for _, r := range letters {
		lettered[r.Metadata["order_id"]] = true
	}
	before := res.get(func(r *toResults) int { return r.ok })
	for i := range toMessages["dup"] {
		if lettered[fmt.Sprintf("o%d", i)] {
			rerun++
		}
		pub("ok", i) // duplicates of done orders
	}
	svcWait(t, "the duplicates acked", func() bool { return res.get(func(r *toResults) int { return r.ok }) >= before+toMessages["dup"] })
	time.Sleep(time.Second) // anything still on its way shows up now
	return rerun
}

// toSettle waits until the ok messages o0 to o<n-1> had their effect or
// a dead letter, and the others their dead letter.
func toSettle(t *testing.T, svc *service.Service, res *toResults, n int) {
	t.Helper()
	letters := toMessages["poison"] + toMessages["panic"] + toMessages["slow"]
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := svc.Store.List(context.Background(), dlqops.Filter{})
		effects := res.get(func(r *toResults) int { return len(r.effects) })
		okLetters := 0
		for _, r := range l {
			if r.Metadata["kind"] == "ok" {
				okLetters++ // failed during the outage, before the breaker opened
			}
		}
		if err == nil && len(l) == letters+okLetters && effects+okLetters == n {
			return
		}
		if time.Now().After(deadline) {
			res.mu.Lock()
			defer res.mu.Unlock()
			for _, r := range l {
				t.Logf("letter %s %s attempts %d: %s: %s", r.Metadata["kind"], r.Metadata["order_id"], r.Attempts, r.ErrorClass, r.Error)
			}
			t.Fatalf("after 30 s: %d letters (%v), %d ok effects, want %d; router %d ok, %d deferred, %d failed, %d calls",
				len(l), err, effects+okLetters, n, res.ok, res.deferred, res.failed, res.call)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// toCheck compares the metrics and spans with what the router saw and
// what the dead-letter store holds.
func toCheck(t *testing.T, svc *service.Service, reader *sdkmetric.ManualReader, sr *tracetest.SpanRecorder, res *toResults, rerun int) {
	t.Helper()
	pts := smPoints(t, reader)
	letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	res.mu.Lock()
	twice := 0
	for _, n := range res.effects {
		if n > 1 {
			twice++
		}
	}
	t.Logf("router: %d ok, %d deferred, %d canceled, %d failed; %d handler calls; %d letters; %d orders with their effect more than once",
		res.ok, res.deferred, res.canceled, res.failed, res.call, len(letters), twice)
	t.Logf("metrics: %v", pts)
	res.mu.Unlock()
	toCheckOutcomes(t, pts, sr, res)
	exact := map[string]int64{
		"levee.handler.messages dead_lettered permanent": int64(toMessages["poison"]),
		"levee.handler.messages dead_lettered panic":     int64(toMessages["panic"]),
		"levee.handler.messages dead_lettered exhausted": int64(len(letters) - toMessages["poison"] - toMessages["panic"]),
		"levee.dlq.dead_letters":                         int64(len(letters)),
		"levee.dlq.monitor.recorded new":                 int64(len(letters)),
		"levee.dedup.duplicates":                         int64(toMessages["dup"] - rerun),
		"levee.breaker.paused":                           0,
		"levee.priority.queue.depth":                     0,
		"levee.priority.slots.in_use":                    0,
		"levee.fleet.degraded":                           0,
	}
	for k, w := range exact {
		if got := toSum(pts, k); got != w {
			t.Errorf("%s: got %d, want %d", k, got, w)
		}
	}
	// The outage is over: the breaker closed and its drain ended.
	for name, want := range map[string]float64{"levee.breaker.state": 0, "levee.breaker.drain.progress": 1, "levee.breaker.drain.rate": 0} {
		if got, ok := toGauge(t, reader, name); !ok || got != want {
			t.Errorf("%s at the end: %v (reported: %v), want %v", name, got, ok, want)
		}
	}
	// Every Nack of this stack is the dlq's: a deferral from further in
	// (or an early redelivery waiting for its retry), or a retry deferred
	// past max hold after a failed attempt (nacked); nothing else fails
	// without a dead letter.
	nacks := toSum(pts, "levee.handler.messages deferred") + toSum(pts, "levee.handler.messages nacked")
	if dlqNacks := toSum(pts, "levee.dlq.deferrals") + toSum(pts, "levee.dlq.retries_deferred"); nacks != dlqNacks {
		t.Errorf("deferred and nacked deliveries: %d; levee.dlq.deferrals + levee.dlq.retries_deferred: %d", nacks, dlqNacks)
	}
	for _, k := range []string{"levee.dedup.store.errors", "levee.fleet.fallbacks", "levee.breaker.transitions open"} {
		if toSum(pts, k) == 0 {
			t.Errorf("%s: 0, want the outage counted", k)
		}
	}
}
