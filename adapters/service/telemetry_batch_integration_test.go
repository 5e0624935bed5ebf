//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// tbYAML is the batch handler of TestTelemetryOfABatchHandler.
const tbYAML = `transport: %s
handlers:
  ledger:
    tracing: {}
    metrics: true
    recover: true
    dlq: {retry: {max_attempts: 2, initial: 20ms, max: 20ms}}
    batch: {max_size: 8, max_wait: 100ms}
`

// tbMessages are what TestTelemetryOfABatchHandler publishes.
var tbMessages = map[string]int{"ok": 40, "poison": 2, "panic": 2}

// tbCalls counts the batch func's calls and the messages it got.
type tbCalls struct {
	mu          sync.Mutex
	calls, msgs int
	bySize      map[int]int // calls by batch size
	// batches and batched are the calls and their messages that were
	// not a rerun isolating a panic (a call of part of a batch that
	// panicked before).
	batches, batched int
	panicked         map[string]bool // UUIDs of messages in a call that panicked
}

// TestTelemetryOfABatchHandler runs a batch handler of a service built
// from a levee.yaml (tracing, metrics, recover, dlq, batch) over every
// durable transport, with batches that hold a poison message (a result
// naming it, permanent) or a panicking one (the batch is split down to
// it), and checks the batch and handler metrics against the func's calls,
// the router's results and the dead-letter store.
func TestTelemetryOfABatchHandler(t *testing.T) {
	onEachTransport(t, 2, tbRun)
}

func tbRun(t *testing.T, transport string, settled func(t *testing.T)) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	topic := brokertest.Name("svc_tel_batch")
	svc, closeSvc := newTopicService(t, fmt.Sprintf(tbYAML, transport), config.Deps{MeterProvider: mp, TracerProvider: tp}, topic)
	defer closeSvc()
	res := &toResults{handler: "ledger", effects: map[string]int{}}
	svc.Router.AddMiddleware(res.track)
	c := &tbCalls{bySize: map[int]int{}, panicked: map[string]bool{}}
	if err := svc.HandleBatch("ledger", topic, func(_ context.Context, msgs []*message.Message) error {
		c.mu.Lock()
		c.calls++
		c.msgs += len(msgs)
		c.bySize[len(msgs)]++
		if !c.panicked[msgs[0].UUID] {
			c.batches++
			c.batched += len(msgs)
		}
		c.mu.Unlock()
		var errs batch.Errors
		for _, m := range msgs {
			if m.Metadata.Get("kind") == "panic" {
				c.mu.Lock()
				for _, m := range msgs {
					c.panicked[m.UUID] = true
				}
				c.mu.Unlock()
				panic("bad row")
			}
		}
		res.mu.Lock()
		defer res.mu.Unlock()
		for i, m := range msgs {
			if m.Metadata.Get("kind") == "poison" {
				errs.Fail(i, dlq.Permanent(errors.New("bad row")))
				continue
			}
			res.effects[m.UUID]++ // the rows of the others are written
		}
		if errs.Len() > 0 {
			return &errs
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Running()
	if settled != nil {
		settled(t)
	}
	for kind, n := range tbMessages {
		for range n {
			m := message.NewMessage(watermill.NewUUID(), []byte(kind))
			m.Metadata.Set("kind", kind)
			if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := svc.Store.List(context.Background(), dlqops.Filter{})
		written := res.get(func(r *toResults) int { return len(r.effects) })
		if err == nil && len(l) == tbMessages["poison"]+tbMessages["panic"] && written == tbMessages["ok"] {
			break
		}
		if time.Now().After(end) {
			c.mu.Lock()
			t.Logf("func: %d calls of %d messages (by size %v)", c.calls, c.msgs, c.bySize)
			c.mu.Unlock()
			t.Logf("metrics: %v", smPoints(t, reader))
			t.Fatalf("after 30 s: %d ok messages written, %d letters (%v); router %d ok, %d deferred, %d canceled, %d failed",
				written, len(l), err, res.ok, res.deferred, res.canceled, res.failed)
		}
	}
	time.Sleep(500 * time.Millisecond) // anything still on its way shows up now
	tbCheck(t, svc, reader, sr, res, c)
	cancel()
	<-ran
}

// tbCheck compares the metrics with the func's calls, the router's
// results and the dead-letter store.
func tbCheck(t *testing.T, svc *service.Service, reader *sdkmetric.ManualReader, sr *tracetest.SpanRecorder, res *toResults, c *tbCalls) {
	t.Helper()
	toCheckOutcomes(t, smPoints(t, reader), sr, res)
	c.mu.Lock()
	defer c.mu.Unlock()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var sizeCount, sizeSum, durCount uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					if m.Name == "levee.batch.size" {
						sizeCount += p.Count
						sizeSum += uint64(p.Sum)
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if m.Name == "levee.batch.duration" {
						durCount += p.Count
					}
				}
			}
		}
	}
	t.Logf("func: %d calls of %d messages (by size %v), %d batches of %d messages; levee.batch.size: %d points of %d messages; levee.batch.duration: %d points",
		c.calls, c.msgs, c.bySize, c.batches, c.batched, sizeCount, sizeSum, durCount)
	// One point per batch, its calls isolating a panic included
	// (docs/TELEMETRY.md).
	if durCount != uint64(c.batches) || sizeCount != uint64(c.batches) || sizeSum != uint64(c.batched) {
		t.Errorf("levee.batch.duration %d points, levee.batch.size %d points of %d messages; want %d batches of %d messages",
			durCount, sizeCount, sizeSum, c.batches, c.batched)
	}
	batchSpans := 0
	for _, s := range sr.Ended() {
		if s.Name() == "batch ledger" {
			batchSpans++
		}
	}
	if batchSpans != c.batches {
		t.Errorf("batch spans: %d, want one per batch: %d", batchSpans, c.batches)
	}
	letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	pts := smPoints(t, reader)
	for k, w := range map[string]int64{
		"levee.handler.messages dead_lettered permanent": int64(tbMessages["poison"]),
		"levee.handler.messages dead_lettered panic":     int64(tbMessages["panic"]),
		"levee.dlq.dead_letters":                         int64(len(letters)),
	} {
		if got := toSum(pts, k); got != w {
			t.Errorf("%s: got %d, want %d", k, got, w)
		}
	}
}
