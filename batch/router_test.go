package batch_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

// spanPerMessage stands in for the tracing slot: it gives every delivery a
// span, as the consumer span of the tracing package would.
func spanPerMessage(tp trace.TracerProvider) message.HandlerMiddleware {
	tr := tp.Tracer("test")
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx, span := tr.Start(msg.Context(), "process "+msg.UUID)
			defer span.End()
			orig := msg.Context()
			msg.SetContext(ctx)
			defer msg.SetContext(orig)
			return next(msg)
		}
	}
}

// TestBehindTheStack runs a Batcher behind per-message middlewares
// (Recover, Timeout) on a GoChannel router: partial failures are
// redelivered and every message ends acked, written exactly once.
func TestBehindTheStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

		var mu sync.Mutex
		written := map[string]int{}
		attempts := map[string]int{}
		fn := func(ctx context.Context, msgs []*message.Message) error {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				return errors.New("batch context carries no span")
			}
			mu.Lock()
			defer mu.Unlock()
			failed := &batch.Errors{}
			for i, m := range msgs {
				attempts[m.UUID]++
				if strings.HasPrefix(string(m.Payload), "flaky") && attempts[m.UUID] == 1 {
					failed.Fail(i, errors.New("first attempt fails"))
					continue
				}
				written[m.UUID]++
			}
			return failed
		}
		b, err := batch.New(fn, batch.WithMaxSize(10), batch.WithMaxWait(20*time.Millisecond),
			batch.WithTracerProvider(tp), batch.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		timeout, err := middleware.NewTimeout(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h := testkit.New(t)
		h.Handle("inventory", "orders", b.NoPublishHandler,
			middleware.Chain(spanPerMessage(tp), middleware.Recover, timeout.Middleware))
		h.Start()
		const n = 50
		h.PublishN("orders", n, func(i int) *message.Message {
			payload := "ok"
			if i%7 == 0 {
				payload = "flaky"
			}
			return message.NewMessage(watermill.NewUUID(), []byte(payload))
		})
		c := h.WaitSettled(n, time.Minute)
		if err := h.Close(); err != nil {
			t.Fatalf("harness close: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("batcher close: %v", err)
		}
		if c.Acked != n {
			t.Errorf("got %s, want %d acked", c, n)
		}
		if want := n/7 + 1; c.Nacked != want {
			t.Errorf("got %d Nacks, want %d (one per flaky message)", c.Nacked, want)
		}
		mu.Lock()
		for id, k := range written {
			if k != 1 {
				t.Errorf("message %s written %d times, want once", id, k)
			}
		}
		if len(written) != n {
			t.Errorf("got %d messages written, want %d", len(written), n)
		}
		mu.Unlock()

		// Spans: one per batch, linked to every message's span; each
		// message span got a "batch" event.
		var batchSpans, links, msgEvents int
		for _, s := range rec.Ended() {
			if strings.HasPrefix(s.Name(), "batch") {
				batchSpans++
				links += len(s.Links())
				if got := s.Name(); got != "batch inventory" {
					t.Errorf("got batch span name %q, want %q", got, "batch inventory")
				}
				continue
			}
			for _, ev := range s.Events() {
				if ev.Name == "batch" {
					msgEvents++
				}
			}
		}
		if batchSpans == 0 || links != c.Calls || msgEvents != c.Calls {
			t.Errorf("got %d batch spans with %d links and %d message events, want links = events = deliveries (%d)",
				batchSpans, links, msgEvents, c.Calls)
		}

		// Metrics: batch size sums to the deliveries, with handler, topic,
		// and reason attributes.
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		var sizeSum int64
		var batches uint64
		seen := map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				seen[m.Name] = true
				if m.Name != "levee.batch.size" {
					continue
				}
				for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
					sizeSum += dp.Sum
					batches += dp.Count
					for _, k := range []attribute.Key{"handler", "topic", "reason"} {
						if _, ok := dp.Attributes.Value(k); !ok {
							t.Errorf("levee.batch.size point lacks attribute %s", k)
						}
					}
					if v, _ := dp.Attributes.Value("handler"); v.AsString() != "inventory" {
						t.Errorf("got handler %q, want inventory", v.AsString())
					}
				}
			}
		}
		if sizeSum != int64(c.Calls) || batches != uint64(batchSpans) {
			t.Errorf("got size sum %d over %d batches, want %d over %d", sizeSum, batches, c.Calls, batchSpans)
		}
		if !seen["levee.batch.duration"] {
			t.Errorf("levee.batch.duration not recorded")
		}
		_ = tp.Shutdown(context.Background())
	})
}

func TestConcurrencyWarning(t *testing.T) {
	tests := []struct {
		name        string
		maxSize     int
		concurrency int
		wantWarning bool
	}{
		{"unknown concurrency", 100, 0, false},
		{"enough concurrency", 100, 100, false},
		{"too little concurrency", 100, 8, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger := watermill.NewCaptureLogger()
			b, err := batch.New(func(context.Context, []*message.Message) error { return nil },
				batch.WithMaxSize(tt.maxSize), batch.WithConcurrency(tt.concurrency), batch.WithLogger(logger))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var got []string
			for _, m := range logger.Captured()[watermill.InfoLogLevel] {
				got = append(got, m.Msg)
			}
			warned := len(got) == 1 && strings.Contains(got[0], "WARNING") && strings.Contains(got[0], "max_size 100") &&
				strings.Contains(got[0], "concurrency 8")
			if warned != tt.wantWarning {
				t.Errorf("got log %q, want warning %v", got, tt.wantWarning)
			}
		})
	}
}
