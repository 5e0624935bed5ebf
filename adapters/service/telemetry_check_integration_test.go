//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/kafkatest"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/tracing"
)

// toResults counts the results of the deliveries as the router saw them
// (a router middleware inside the transport's, outside the stack).
type toResults struct {
	handler                              string // the handler counted
	mu                                   sync.Mutex
	ok, deferred, canceled, failed, call int
	effects                              map[string]int // order_id -> successful handler calls
}

func (r *toResults) track(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if message.HandlerNameFromCtx(msg.Context()) != r.handler {
			return out, err // the dead-letter monitor
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case err == nil:
			r.ok++
		case errors.Is(err, context.Canceled):
			// First, as docs/TELEMETRY.md has it: a deferral whose wait
			// the shutdown cut short (a dedup claim on a stalled store)
			// is handed back, canceled.
			r.canceled++
		case levee.IsDeferral(err):
			r.deferred++
		default:
			r.failed++
		}
		return out, err
	}
}

func (r *toResults) get(f func(r *toResults) int) int { r.mu.Lock(); defer r.mu.Unlock(); return f(r) }

// toCase is a transport section of a levee.yaml and how to wait until it
// hands over steadily.
type toCase struct {
	name, transport string
	settled         func(t *testing.T)
}

// toCases are the durable transports, Kafka on an in-process broker
// whose group settles with members members.
func toCases(t *testing.T, members int) []toCase {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	kafkaGroup := brokertest.Name("to")
	return []toCase{
		{"amqp", fmt.Sprintf("{kind: amqp, concurrency: 8, amqp: {url: %q}}", brokertest.AMQPURL()), nil},
		{"nats", fmt.Sprintf("{kind: nats, concurrency: 8, ack_deadline: 30s, consumer_group: %s, nats: {url: %q}}",
			brokertest.Name("to"), brokertest.NATSURL()), nil},
		{"redis", fmt.Sprintf("{kind: redis, concurrency: 8, ack_deadline: 30s, consumer_group: %s, redis: {addr: %q}}",
			brokertest.Name("to"), brokertest.RedisAddr()), nil},
		{"postgres", fmt.Sprintf("{kind: postgres, concurrency: 8, ack_deadline: 30s, postgres: {url: %q, max_conns: 16}}",
			brokertest.PostgresURL()), nil},
		{"kafka", fmt.Sprintf("{kind: kafka, concurrency: 8, consumer_group: %s, kafka: {brokers: [%q]}}",
			kafkaGroup, cluster.ListenAddrs()[0]),
			func(t *testing.T) {
				kafkatest.WaitStable(t, cluster.ListenAddrs(), kafkaGroup, members, 30*time.Second)
			}},
	}
}

// toSum adds up the points of smPoints whose key starts with prefix.
func toSum(pts map[string]int64, prefix string) int64 {
	var n int64
	for k, v := range pts {
		if k == prefix || strings.HasPrefix(k, prefix+" ") {
			n += v
		}
	}
	return n
}

// toCheckOutcomes compares levee.handler.messages and the samples of
// levee.handler.duration, by outcome, with the results the router saw,
// and the consumer spans' outcomes with levee.handler.messages.
func toCheckOutcomes(t *testing.T, pts map[string]int64, sr *tracetest.SpanRecorder, res *toResults) {
	t.Helper()
	res.mu.Lock()
	defer res.mu.Unlock()
	dead := toSum(pts, "levee.handler.messages dead_lettered")
	for name, want := range map[string]int64{
		"acked + dead_lettered": int64(res.ok), "deferred": int64(res.deferred),
		"canceled": int64(res.canceled), "nacked": int64(res.failed),
	} {
		var got, hist int64
		if name == "acked + dead_lettered" {
			got = toSum(pts, "levee.handler.messages acked") + dead
			hist = toSum(pts, "levee.handler.duration acked") + toSum(pts, "levee.handler.duration dead_lettered")
		} else {
			got = toSum(pts, "levee.handler.messages "+name)
			hist = toSum(pts, "levee.handler.duration "+name)
		}
		if got != want {
			t.Errorf("levee.handler.messages %s: %d, the router saw %d", name, got, want)
		}
		if hist != got {
			t.Errorf("levee.handler.duration %s: %d samples, levee.handler.messages %d", name, hist, got)
		}
	}
	spans := map[string]int64{}
	for _, s := range sr.Ended() {
		if s.SpanKind().String() != "consumer" || !strings.HasPrefix(s.Name(), "process ") {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key != tracing.AttrOutcome {
				continue
			}
			o := kv.Value.AsString()
			spans[o]++
			// Backpressure and hand-backs are no failures.
			if failed := s.Status().Code == codes.Error; failed != (o == tracing.OutcomeNacked) && o != tracing.OutcomeDeadLettered {
				t.Errorf("consumer span with levee.outcome=%s has status %v", o, s.Status())
			}
		}
	}
	for _, o := range []string{"acked", "nacked", "deferred", "canceled", "dead_lettered"} {
		if got := toSum(pts, "levee.handler.messages "+o); spans[o] != got {
			t.Errorf("consumer spans with levee.outcome=%s: %d, levee.handler.messages: %d", o, spans[o], got)
		}
	}
}

// toGauge returns the sum of the points of gauge name.
func toGauge(t *testing.T, r *sdkmetric.ManualReader, name string) (float64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var v float64
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					v, found = v+float64(p.Value), true
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					v, found = v+p.Value, true
				}
			}
		}
	}
	return v, found
}

// newTopicService builds a service from the file y with deps, watching
// its dead letters, and the func to defer that closes it: the router
// first, so that nothing consumes topic and its dead-letter topic while
// they are deleted, then the service.
func newTopicService(t *testing.T, y string, deps config.Deps, topic string) (*service.Service, func()) {
	t.Helper()
	svc, err := service.New(context.Background(), parse(t, y), deps)
	if err != nil {
		t.Fatal(err)
	}
	svc.WatchDeadLetters = true
	return svc, func() {
		_ = svc.Router.Close()
		_ = svc.Transport.DeleteTopics(context.Background(), topic, dlq.DefaultTopic(topic))
		_ = svc.Close()
	}
}

// onEachTransport runs run on each of toCases' transports at once, each a
// subtest, and returns when all have ended.
func onEachTransport(t *testing.T, members int, run func(t *testing.T, transport string, settled func(t *testing.T))) {
	var wg sync.WaitGroup
	for _, c := range toCases(t, members) {
		wg.Go(func() { t.Run(c.name, func(t *testing.T) { run(t, c.transport, c.settled) }) })
	}
	wg.Wait()
}
