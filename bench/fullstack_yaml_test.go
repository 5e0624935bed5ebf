//go:build unix

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	gobreakerv1 "github.com/sony/gobreaker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/tracing"
)

// fullStackYAMLFile is the canonical stack every full-stack benchmark
// builds: recover, dlq, breaker (failure ratio, drain), priority (a shared
// scheduler of 64 slots), ratelimit (no limit) and timeout, plus tracing
// when a TracerProvider is given.
const fullStackYAMLFile = "testdata/fullstack.yaml"

// fullStackYAML builds the handler "orders" of fullStackYAMLFile around
// next with config.Build, tracing on when tp is not nil.
func fullStackYAML(tb testing.TB, tp trace.TracerProvider, next message.HandlerFunc) message.HandlerFunc {
	tb.Helper()
	a := fullStackApplied(tb, tp)
	return a.Stack("orders").Middleware(next)
}

func fullStackApplied(tb testing.TB, tp trace.TracerProvider) *config.Applied {
	tb.Helper()
	data, err := os.ReadFile(fullStackYAMLFile)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(fullStackYAMLFile, data, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	deps := config.Deps{Publisher: dlqNopPublisher{}, System: "gochannel"}
	if tp != nil {
		deps.TracerProvider = tp
	}
	a, err := config.Build(cfg, deps)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	return a
}

// fullStackWatermillChain is Watermill's equivalent of the stack:
// Recoverer, PoisonQueue, Retry, CircuitBreaker and Timeout.
func fullStackWatermillChain(tb testing.TB, next message.HandlerFunc) message.HandlerFunc {
	tb.Helper()
	pq, err := wmw.PoisonQueue(dlqNopPublisher{}, "orders.dlq")
	if err != nil {
		tb.Fatal(err)
	}
	retry := wmw.Retry{MaxRetries: 4, InitialInterval: 100 * time.Millisecond, MaxInterval: 10 * time.Second,
		Multiplier: 2, Logger: watermill.NopLogger{}}
	cb := wmw.NewCircuitBreaker(gobreakerv1.Settings{Name: "orders"})
	return middleware.Chain(wmw.Recoverer, pq, retry.Middleware, cb.Middleware, wmw.Timeout(2*time.Second))(next)
}

// fullStackSDKSpan is the baseline of tracing's cost: what a hand-written
// middleware making the same consumer span costs with the SDK. It extracts
// the trace context and baggage with the same propagator, starts a
// "process orders" consumer span with the attributes Levee's span has
// (messaging operation, destination, system, handler, message id, body
// size), puts it in the message context for the handler, records the
// outcome and ends it.
func fullStackSDKSpan(tp trace.TracerProvider, next message.HandlerFunc) message.HandlerFunc {
	tr := tp.Tracer("bench")
	prop := tracing.DefaultPropagator()
	static := []attribute.KeyValue{
		semconv.MessagingOperationName("process"), semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName("orders"), tracing.AttrHandler.String("orders"),
		semconv.MessagingSystemKey.String("gochannel"),
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		orig := msg.Context()
		ctx := prop.Extract(orig, propagation.MapCarrier(msg.Metadata))
		ctx, span := tr.Start(ctx, "process orders", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(static...),
			trace.WithAttributes(semconv.MessagingMessageID(msg.UUID), semconv.MessagingMessageBodySize(len(msg.Payload))))
		msg.SetContext(ctx)
		out, err := next(msg)
		msg.SetContext(orig)
		span.SetAttributes(tracing.AttrOutcome.String(tracing.OutcomeAcked))
		span.End()
		return out, err
	}
}

// fullStackRouterCtx returns a context carrying what a Watermill router
// puts in every message context (handler name, topics), taken from one
// real delivery over GoChannel, without its cancellation.
func fullStackRouterCtx(tb testing.TB) context.Context {
	tb.Helper()
	logger := watermill.NopLogger{}
	ps := gochannel.NewGoChannel(gochannel.Config{}, logger)
	defer ps.Close()
	r, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	got := make(chan context.Context, 1)
	r.AddConsumerHandler("orders", "orders", ps, func(m *message.Message) error {
		select {
		case got <- context.WithoutCancel(m.Context()):
		default:
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	<-r.Running()
	if err := ps.Publish("orders", message.NewMessage("1", nil)); err != nil {
		tb.Fatal(err)
	}
	c := <-got
	cancel()
	<-done
	return c
}

// BenchmarkFullStackYAML is the headline: the canonical stack built from
// testdata/fullstack.yaml with config.Build, tracing off and on (the SDK,
// always sample, spans dropped at end: no exporter), against Watermill's
// equivalent chain and a bare delivery, in one run, calling the composed
// handler directly. Every call gets a fresh message (with a traceparent)
// and a cancelable context carrying the router's values, as a router
// gives; bare is that delivery alone. bare_sdk_span is the bare delivery
// with a hand-written SDK consumer span of the same attributes: the
// baseline of tracing's cost.
func BenchmarkFullStackYAML(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(tracingDropProcessor{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	base := fullStackRouterCtx(b)
	cases := []struct {
		name string
		h    func(testing.TB) message.HandlerFunc
	}{
		{"bare", func(testing.TB) message.HandlerFunc { return middlewareNoop }},
		{"levee", func(tb testing.TB) message.HandlerFunc { return fullStackYAML(tb, nil, middlewareNoop) }},
		{"watermill", func(tb testing.TB) message.HandlerFunc { return fullStackWatermillChain(tb, middlewareNoop) }},
		{"bare_sdk_span", func(testing.TB) message.HandlerFunc { return fullStackSDKSpan(tp, middlewareNoop) }},
		{"levee_tracing", func(tb testing.TB) message.HandlerFunc { return fullStackYAML(tb, tp, middlewareNoop) }},
	}
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := c.h(b)
			payload := []byte(`{"id":1}`)
			b.ReportAllocs()
			cpu0 := breakerCPU()
			for b.Loop() {
				msg := message.NewMessage("7e2f1b8c-0000-4000-8000-000000000001", payload)
				msg.Metadata.Set(tracing.KeyTraceparent, traceparent)
				ctx, cancel := context.WithCancel(base)
				msg.SetContext(ctx)
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
			// Process CPU per call (getrusage): unlike ns/op it does not
			// count time the benchmark waited for a CPU on a busy machine.
			b.ReportMetric(float64(breakerCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// fullStackRouter is a router over its own GoChannel with one handler,
// "orders", that signals done per message; with the stack of
// testdata/fullstack.yaml (tracing off) attached with config.Apply.
type fullStackRouter struct {
	ps   *gochannel.GoChannel
	done chan struct{}
}

func newFullStackRouter(b *testing.B, withStack bool, batch int, work func(*message.Message) error) *fullStackRouter {
	b.Helper()
	logger := watermill.NopLogger{}
	fr := &fullStackRouter{
		ps:   gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: int64(batch)}, logger),
		done: make(chan struct{}, batch),
	}
	r, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		b.Fatal(err)
	}
	r.AddConsumerHandler("orders", "orders", fr.ps, func(msg *message.Message) error {
		err := work(msg)
		fr.done <- struct{}{}
		return err
	})
	if withStack {
		data, err := os.ReadFile(fullStackYAMLFile)
		if err != nil {
			b.Fatal(err)
		}
		cfg, err := config.Parse(fullStackYAMLFile, data, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		a, err := config.Apply(r, cfg, config.Deps{Publisher: dlqNopPublisher{}, System: "gochannel"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = a.Close() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = r.Run(ctx); close(runDone) }()
	<-r.Running()
	b.Cleanup(func() { cancel(); <-runDone; _ = fr.ps.Close() })
	return fr
}

// run publishes msgs and waits until every one was handled and acked; it
// returns the time that took and the process CPU spent meanwhile.
func (fr *fullStackRouter) run(b *testing.B, msgs []*message.Message) (time.Duration, time.Duration) {
	t0, cpu0 := time.Now(), breakerCPU()
	if err := fr.ps.Publish("orders", msgs...); err != nil {
		b.Fatal(err)
	}
	for range msgs {
		<-fr.done
	}
	return time.Since(t0), breakerCPU() - cpu0
}

// BenchmarkFullStackRouterGoChannel measures router throughput over
// GoChannel: a bare handler against the same handler behind the canonical
// stack of testdata/fullstack.yaml (tracing off) attached with
// config.Apply. The two routers run side by side and take turns, one batch
// of 1,000 messages each (all acked) per turn, so that a machine whose load
// changes treats both alike; it reports each one's msgs/s and their ratio
// (the target is >= 0.9), and the process CPU per message of each, which
// a busy machine disturbs less. b.N counts messages per router.
//
// Two handlers: "noop" does nothing, so its goroutine (the router starts
// one per delivery, with a 2 KiB stack) never grows its stack, while the
// stack's layers make it grow once (docs/BENCHMARKS.md); "json" decodes
// the message's JSON order, as about every real handler does, which grows
// the stack by itself, so the layers cost only their own work.
func BenchmarkFullStackRouterGoChannel(b *testing.B) {
	payload := []byte(`{"order_id":"o-1042","customer":"c-77","lines":[{"sku":"A-1","qty":2,"price":12.5},{"sku":"B-9","qty":1,"price":40}],"currency":"EUR","note":"leave at the door"}`)
	for _, h := range []struct {
		name string
		work func(*message.Message) error
	}{
		{"noop", func(*message.Message) error { return nil }},
		{"json", func(msg *message.Message) error {
			var o struct {
				OrderID  string `json:"order_id"`
				Customer string `json:"customer"`
				Lines    []struct {
					SKU   string  `json:"sku"`
					Qty   int     `json:"qty"`
					Price float64 `json:"price"`
				} `json:"lines"`
				Currency string `json:"currency"`
				Note     string `json:"note"`
			}
			return json.Unmarshal(msg.Payload, &o)
		}},
	} {
		b.Run(h.name, func(b *testing.B) { benchFullStackRouter(b, payload, h.work) })
	}
}

func benchFullStackRouter(b *testing.B, payload []byte, work func(*message.Message) error) {
	const batch = 1000
	bare := newFullStackRouter(b, false, batch, work)
	stack := newFullStackRouter(b, true, batch, work)
	compareRouters(b, payload, batch, bare, stack, "levee")
}

// compareRouters runs b.N messages through each of bare and other, one
// batch each in turn, and reports each one's msgs/s and process CPU per
// message (other's under name), and bare's time over other's as ratio.
func compareRouters(b *testing.B, payload []byte, batch int, bare, other *fullStackRouter, name string) {
	var tBare, tOther, cBare, cOther time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		k := min(batch, b.N-n)
		for i, fr := range []*fullStackRouter{bare, other} {
			msgs := make([]*message.Message, k)
			for j := range msgs {
				msgs[j] = message.NewMessage(fmt.Sprint(n+j), payload)
			}
			if d, c := fr.run(b, msgs); i == 0 {
				tBare, cBare = tBare+d, cBare+c
			} else {
				tOther, cOther = tOther+d, cOther+c
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/tBare.Seconds(), "bare_msgs/s")
	b.ReportMetric(float64(b.N)/tOther.Seconds(), name+"_msgs/s")
	b.ReportMetric(tBare.Seconds()/tOther.Seconds(), "ratio")
	b.ReportMetric(float64(cBare)/float64(b.N), "bare_cpu-ns/msg")
	b.ReportMetric(float64(cOther)/float64(b.N), name+"_cpu-ns/msg")
}

// BenchmarkRouterStackGrowth is the bound behind the no-op handler's
// ratio in BenchmarkFullStackRouterGoChannel, without Levee: a bare router
// with a no-op handler against the same router whose handler calls a
// function with a 1 KiB frame, which grows the delivery goroutine's 2 KiB
// stack once, as the canonical stack's layers do (docs/BENCHMARKS.md).
func BenchmarkRouterStackGrowth(b *testing.B) {
	const batch = 1000
	bare := newFullStackRouter(b, false, batch, func(*message.Message) error { return nil })
	grown := newFullStackRouter(b, false, batch, func(*message.Message) error { growStack(0); return nil })
	compareRouters(b, []byte(`{}`), batch, bare, grown, "grown")
}

// growStack has a 1 KiB frame: called from a router's delivery goroutine,
// it grows the goroutine's new 2 KiB stack once.
//
//go:noinline
func growStack(i int) byte {
	var pad [1024]byte
	return pad[i%len(pad)]
}
