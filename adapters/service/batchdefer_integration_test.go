//go:build integration

package service_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// bdYAML leaves no room for a deferral counted wrongly: one attempt (a
// counted deferral dead-letters the message as exhausted) and a breaker
// that opens on one failure (a counted deferral opens it).
const bdYAML = `transport: %s
handlers:
  ledger:
    metrics: true
    recover: true
    timeout: 2s
    dlq: {retry: {max_attempts: 1}}
    dedup: {key: {metadata: order_id}, busy_retry: 50ms}
    breaker: {consecutive_failures: 1, open_for: 1m}
    ratelimit: {mode: reject, key: {metadata: customer}, per_key: {rate: 20/s, burst: 1}}
    batch: {max_size: 8, max_wait: 100ms}
`

// TestBatchDeferralsAreNoAttempts publishes to a batch handler messages
// that a per-key rate limit rejects (one hot customer) and duplicates
// that the dedup layer finds in progress (one order published three
// times at once): each deferral is redelivered, none counts as an attempt
// (max_attempts 1) or a breaker failure (it opens on one), so every order
// is written once and nothing is dead-lettered.
func TestBatchDeferralsAreNoAttempts(t *testing.T) {
	onEachTransport(t, 2, bdRun)
}

func bdRun(t *testing.T, transport string, settled func(t *testing.T)) {
	topic := brokertest.Name("svc_batch_defer")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	svc, closeSvc := newTopicService(t, fmt.Sprintf(bdYAML, transport), config.Deps{MeterProvider: mp}, topic)
	defer closeSvc()
	res := &toResults{handler: "ledger", effects: map[string]int{}}
	svc.Router.AddMiddleware(res.track)
	var mu sync.Mutex
	written := map[string]int{}
	if err := svc.HandleBatch("ledger", topic, func(_ context.Context, msgs []*message.Message) error {
		time.Sleep(200 * time.Millisecond) // duplicates arrive meanwhile
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			written[m.Metadata.Get("order_id")]++
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
	orders := map[string]bool{}
	for i := range 40 {
		order := "o" + strconv.Itoa(i)
		customer := "c" + strconv.Itoa(i)
		copies := 1
		switch {
		case i < 12:
			customer = "hot" // 12 at once against a burst of 1
		case i < 16:
			copies = 3 // three UUIDs of one order at once
		}
		orders[order] = true
		for range copies {
			m := message.NewMessage(watermill.NewUUID(), []byte("row"))
			m.Metadata.Set("order_id", order)
			m.Metadata.Set("customer", customer)
			if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		w := len(written)
		mu.Unlock()
		if w == len(orders) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after 60 s %d of %d orders written; router %d ok, %d deferred, %d failed", w, len(orders), res.ok, res.deferred, res.failed)
		}
	}
	time.Sleep(time.Second)
	letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil || len(letters) != 0 {
		for _, l := range letters {
			t.Logf("letter %s: %s %s", l.Metadata["order_id"], l.ErrorClass, l.Error)
		}
		t.Errorf("%d dead letters (%v), want none", len(letters), err)
	}
	mu.Lock()
	for o := range orders {
		if written[o] != 1 {
			t.Errorf("%s written %d times, want once", o, written[o])
		}
	}
	mu.Unlock()
	pts := smPoints(t, reader)
	rejected, transitions := toSum(pts, "levee.ratelimit.rejected"), toSum(pts, "levee.breaker.transitions")
	t.Logf("levee.ratelimit.rejected %d, levee.breaker.transitions %d, levee.dedup.* %v", rejected, transitions, bdDedup(pts))
	if rejected == 0 {
		t.Error("the rate limit rejected nothing: the test made no deferral")
	}
	if transitions != 0 {
		t.Errorf("the breaker changed state %d times, want never: a deferral is no failure", transitions)
	}
	res.mu.Lock()
	t.Logf("router %d ok, %d deferred, %d canceled, %d failed", res.ok, res.deferred, res.canceled, res.failed)
	if res.failed != 0 {
		t.Errorf("%d deliveries failed, want none (every Nack a deferral)", res.failed)
	}
	res.mu.Unlock()
	cancel()
	<-ran
}

// bdDedup returns the dedup points of pts.
func bdDedup(pts map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range pts {
		if strings.HasPrefix(k, "levee.dedup.") {
			out[k] = v
		}
	}
	return out
}
