package config_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// faultsYAML is the stack of TestMetricsUnderCombinedFaults: every
// concern that defers, retries or dead-letters, on one handler.
const faultsYAML = `schedulers:
  shared: {slots: 1, aging: 1s, max_waiting: 1, max_wait: 300ms, retry_after: 2s}
handlers:
  orders:
    metrics: true
    recover: true
    dlq:
      topic: orders.dlq
      max_hold: 1s
      retry: {max_attempts: 3, initial: 100ms, max: 100ms}
    breaker: {consecutive_failures: 3, open_for: 10s, max_hold: 500ms}
    priority: {scheduler: shared}
    ratelimit: {rate: 0.5/s, burst: 3, max_wait: 50ms}
  notify:
    metrics: true
    priority: {scheduler: shared}
`

// dlqRecorder is the dead-letter publisher: it keeps what it was given.
type dlqRecorder struct {
	mu   sync.Mutex
	msgs map[string][]*message.Message // by topic
}

func (p *dlqRecorder) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.msgs[topic] = append(p.msgs[topic], m.Copy())
	}
	return nil
}

func (p *dlqRecorder) Close() error { return nil }

// buildMetered builds a levee.yaml's handlers with metrics read by the
// returned reader and dead letters kept by a dlqRecorder. The Applied and
// the meter provider are closed when the test ends.
func buildMetered(t *testing.T, yaml string) (*config.Applied, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	cfg, err := config.Parse("levee.yaml", []byte(yaml), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &dlqRecorder{msgs: map[string][]*message.Message{}}
	a, err := config.Build(cfg, config.Deps{MeterProvider: mp, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, reader
}

// points flattens a collection: metric name, then the attributes listed
// (in order, "-" when absent), to the counter's value, the histogram's
// count, or the gauge's value.
func points(t *testing.T, r *sdkmetric.ManualReader, keys ...attribute.Key) (map[string]int64, map[string]float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	n, sums := map[string]int64{}, map[string]float64{}
	key := func(name string, set attribute.Set) string {
		k := name
		for _, a := range keys {
			if v, ok := set.Value(a); ok {
				k += " " + v.String()
			}
		}
		return k
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					n[key(m.Name, p.Attributes)] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					n[key(m.Name, p.Attributes)] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					n[key(m.Name, p.Attributes)] += int64(p.Count)
					sums[key(m.Name, p.Attributes)] += p.Sum
				}
			}
		}
	}
	return n, sums
}

// TestMetricsUnderCombinedFaults drives two handlers built from one YAML
// file, sharing a one-slot priority scheduler, through a script of faults
// in fake time. orders has metrics, recover, a dlq with retries, a breaker
// and a rate limit: healthy messages; a slow one holding the only slot
// while one message is shed at the scheduler's max wait and one at the
// full queue; a rate-limit rejection past the dlq's max hold (Nacked) and
// one within it (waited in process, then acked); a poison message; a
// failing one that exhausts its three attempts and trips the breaker; one
// held past the breaker's max hold; two held by the open breaker at
// shutdown, while notify holds the slot and has one message queued. Every
// count is exact: a deferral is never a failure, an attempt or a dead
// letter; in-process retries are not deliveries; each dead letter is
// published and counted once, and stored and counted once by the DLQ's
// monitor and group gauges although the DLQ redelivers it; the held and queued messages leave
// levee.breaker.paused and the scheduler's gauges at 0 after shutdown;
// durations are in seconds.
func TestMetricsUnderCombinedFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		cfg, err := config.Parse("levee.yaml", []byte(faultsYAML), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		pub := &dlqRecorder{msgs: map[string][]*message.Message{}}
		applied, err := config.Build(cfg, config.Deps{MeterProvider: mp, Publisher: pub})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		calls := map[string]int{}
		handler := func(m *message.Message) ([]*message.Message, error) {
			mu.Lock()
			calls[m.UUID]++
			mu.Unlock()
			switch m.Metadata.Get("kind") {
			case "slow":
				time.Sleep(time.Second)
			case "poison":
				return nil, dlq.Permanent(errors.New("bad order"))
			case "flaky":
				return nil, errors.New("gateway down")
			}
			return nil, nil
		}
		orders := applied.Stack("orders").Middleware(handler)
		notify := applied.Stack("notify").Middleware(handler)
		results := map[string]string{} // UUID -> acked, deferred or nacked
		var wg sync.WaitGroup
		send := func(id, kind string) {
			h := orders
			if strings.HasPrefix(id, "notify") {
				h = notify
			}
			wg.Go(func() {
				m := message.NewMessage(id, nil)
				m.Metadata.Set("kind", kind)
				_, err := h(m)
				r := "acked"
				switch {
				case levee.IsDeferral(err):
					r = "deferred"
				case err != nil:
					r = "nacked: " + err.Error()
				}
				mu.Lock()
				results[id] = r
				mu.Unlock()
			})
			synctest.Wait()
		}

		// Between phases the rate limit's bucket refills (3 tokens, one
		// every 2 s); fake time costs nothing.
		send("ok-1", "ok")
		wg.Wait()
		send("ok-2", "ok")
		wg.Wait()
		time.Sleep(10 * time.Second)
		send("slow", "slow")          // holds the only slot for 1 s
		send("shed-max-wait", "ok")   // queued, shed at 300 ms
		send("shed-queue-full", "ok") // the queue (1) is full: shed now
		wg.Wait()
		time.Sleep(10 * time.Second)
		for _, id := range []string{"rl-1", "rl-2", "rl-3", "rl-nacked"} {
			send(id, "ok") // the fourth's token is 2 s away: past max_wait, and past the dlq's max_hold
			wg.Wait()
		}
		time.Sleep(1500 * time.Millisecond)
		send("rl-waited", "ok") // rejected too, but its token is 0.5 s away: the dlq waits it in process
		wg.Wait()
		time.Sleep(10 * time.Second)
		send("poison", "poison") // permanent: not a breaker failure
		wg.Wait()
		time.Sleep(10 * time.Second)
		send("flaky", "flaky") // 3 attempts, 3 failures in a row: the breaker opens
		wg.Wait()
		send("held", "ok") // the breaker is open: held 500 ms
		wg.Wait()
		send("shutdown-1", "ok")
		send("shutdown-2", "ok")
		send("notify-slow", "slow") // holds the shared slot for 1 s
		send("notify-queued", "ok") // waits for it: shed (closed) at shutdown
		time.Sleep(200 * time.Millisecond)
		before, _ := points(t, reader)
		if err := applied.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()

		want := map[string]string{
			"ok-1": "acked", "ok-2": "acked", "slow": "acked", "rl-1": "acked", "rl-2": "acked", "rl-3": "acked", "rl-waited": "acked",
			"shed-max-wait": "deferred", "shed-queue-full": "deferred", "rl-nacked": "deferred",
			"poison": "acked", "flaky": "acked", "held": "deferred", "shutdown-1": "deferred", "shutdown-2": "deferred",
			"notify-slow": "acked", "notify-queued": "deferred",
		}
		for id, w := range want {
			if results[id] != w {
				t.Errorf("%s: the router got %q, want %s", id, results[id], w)
			}
		}
		wantCalls := map[string]int{"ok-1": 1, "ok-2": 1, "slow": 1, "rl-1": 1, "rl-2": 1, "rl-3": 1, "rl-waited": 1, "poison": 1, "flaky": 3, "notify-slow": 1}
		if len(calls) != len(wantCalls) {
			t.Errorf("handler calls %v, want %v", calls, wantCalls)
		}
		for id, w := range wantCalls {
			if calls[id] != w {
				t.Errorf("%s: %d handler calls, want %d", id, calls[id], w)
			}
		}
		letters := pub.msgs["orders.dlq"]
		if len(letters) != 2 || len(pub.msgs) != 1 || letters[0].UUID != "poison" || letters[1].UUID != "flaky" {
			t.Errorf("dead letters published: %v, want poison and flaky once each on orders.dlq", pub.msgs)
		}
		// The DLQ's consumer: the monitor stores each letter, and gets
		// each again (the DLQ transport redelivers it): stored once.
		store := dlqops.NewMemStore()
		mon, err := dlqops.NewMonitor(store, dlqops.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		gauges, err := dlqops.NewGroupGauges(store, dlqops.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = gauges.Close() }()
		for range 2 {
			for _, l := range letters {
				if err := mon.Handle(l); err != nil {
					t.Fatal(err)
				}
			}
		}
		for k, w := range map[string]int64{"levee.breaker.paused": 2, "levee.priority.queue.depth": 1, "levee.priority.slots.in_use": 1} {
			if before[k] != w {
				t.Errorf("%s before shutdown: got %d, want %d", k, before[k], w)
			}
		}

		got, sums := points(t, reader, "outcome", "class", "reason", "to")
		exact := map[string]int64{
			// Deliveries (the router's calls), by outcome: in-process
			// retries are not deliveries.
			"levee.handler.messages acked":                   8,
			"levee.handler.messages dead_lettered permanent": 1,
			"levee.handler.messages dead_lettered exhausted": 1,
			"levee.handler.messages deferred":                6,
			// notify-queued: the scheduler's shutdown rejection matches
			// context.Canceled, a hand-back, not a deferral.
			"levee.handler.messages canceled":                1,
			"levee.handler.duration acked":                   8,
			"levee.handler.duration dead_lettered permanent": 1,
			"levee.handler.duration dead_lettered exhausted": 1,
			"levee.handler.duration deferred":                6,
			"levee.handler.duration canceled":                1,
			"levee.dlq.dead_letters permanent":               1,
			"levee.dlq.dead_letters exhausted":               1,
			"levee.dlq.retries":                              2,
			"levee.dlq.deferrals":                            6,
			"levee.priority.shed queue_full":                 1,
			"levee.priority.shed max_wait":                   1,
			"levee.priority.shed closed":                     1,
			"levee.priority.queue.depth":                     0,
			"levee.priority.slots.in_use":                    0,
			"levee.ratelimit.rejected max_wait":              2,
			"levee.breaker.transitions open":                 1,
			"levee.breaker.wait.duration max_hold":           1,
			"levee.breaker.wait.duration closed":             2,
			"levee.breaker.paused":                           0,
			// Each dead letter once in the DLQ's store and its gauges.
			"levee.dlq.monitor.recorded new":       2,
			"levee.dlq.monitor.recorded duplicate": 2,
			"levee.dlq.group.dead_letters":         2,
			"levee.dlq.group.new_in_window":        2,
		}
		for k, w := range exact {
			if got[k] != w {
				t.Errorf("%s: got %d, want %d", k, got[k], w)
			}
		}
		for k, v := range got {
			if _, ok := exact[k]; !ok && v != 0 && !optional(k) {
				t.Errorf("unexpected %s = %d", k, v)
			}
		}
		// Seconds: the breaker's max hold is 0.5 s exactly in fake time,
		// the two held at shutdown waited 0.2 s each; the deliveries'
		// durations add the slow handler's 1 s, the shed message's 0.3 s,
		// rl-waited's 0.5 s, notify's 1 s and 0.2 s and the flaky message's
		// two backoffs of at most 0.1 s.
		if s := sums["levee.breaker.wait.duration max_hold"]; s != 0.5 {
			t.Errorf("levee.breaker.wait.duration max_hold: sum %v, want 0.5 (seconds)", s)
		}
		if s := sums["levee.breaker.wait.duration closed"]; s != 0.4 {
			t.Errorf("levee.breaker.wait.duration closed: sum %v, want 0.4 (seconds)", s)
		}
		var total float64
		for k, s := range sums {
			if len(k) > 22 && k[:22] == "levee.handler.duration" {
				total += s
			}
		}
		if total < 3.9 || total > 4.1 {
			t.Errorf("levee.handler.duration: sum %v s, want 3.9 to 4.1 (seconds)", total)
		}
	})
}

// optional names the points TestMetricsUnderCombinedFaults does not pin:
// gauges of configuration and waits of admitted messages.
func optional(k string) bool {
	for _, p := range []string{"levee.priority.slots.limit", "levee.priority.wait.duration", "levee.ratelimit.wait.duration",
		"levee.breaker.drain.progress", "levee.ratelimit.limit"} {
		if len(k) >= len(p) && k[:len(p)] == p {
			return true
		}
	}
	return false
}
