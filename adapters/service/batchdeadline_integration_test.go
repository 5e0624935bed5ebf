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

// bhYAML is a batch handler whose func is slower than batches form: the
// queued batches reach the max hold (80% of a 3 s ack deadline) and are
// handed back.
const bhYAML = `transport: %s
handlers:
  ledger:
    metrics: true
    recover: true
    dlq: {retry: {max_attempts: 2, initial: 20ms, max: 50ms}}
    dedup: {key: {metadata: order_id}}
    batch: {max_size: 2, max_wait: 200ms, max_in_flight: 1}
`

// TestBatchMaxHoldNearTheAckDeadline: over the transports with an ack
// deadline (JetStream AckWait, Redis claim, PostgreSQL AckDeadline), queued
// batches that would outlive the deadline are handed back at the max hold
// (a deferral, not an attempt) instead of being redelivered by the broker
// while they wait; every message is written once and none dead-lettered.
func TestBatchMaxHoldNearTheAckDeadline(t *testing.T) {
	var wg sync.WaitGroup
	for _, c := range toCases(t, 2) {
		if !strings.Contains(c.transport, "ack_deadline: 30s") {
			continue
		}
		tr := strings.Replace(c.transport, "ack_deadline: 30s", "ack_deadline: 3s", 1)
		wg.Go(func() { t.Run(c.name, func(t *testing.T) { bhRun(t, tr) }) })
	}
	wg.Wait()
}

func bhRun(t *testing.T, transport string) {
	topic := brokertest.Name("svc_batch_hold")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	svc, closeSvc := newTopicService(t, fmt.Sprintf(bhYAML, transport), config.Deps{MeterProvider: mp}, topic)
	defer closeSvc()
	var mu sync.Mutex
	written := map[string]int{}
	calls := 0
	if err := svc.HandleBatch("ledger", topic, func(_ context.Context, msgs []*message.Message) error {
		time.Sleep(time.Second) // one batch of 2 a second, 4 batches in flight: the last waits 3 s
		mu.Lock()
		defer mu.Unlock()
		calls++
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
	const n = 20
	for i := range n {
		m := message.NewMessage(watermill.NewUUID(), []byte("row"))
		m.Metadata.Set("order_id", "o"+strconv.Itoa(i))
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		w := len(written)
		mu.Unlock()
		if w == n {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after 90 s %d of %d written", w, n)
		}
	}
	time.Sleep(4 * time.Second) // a redelivery past the deadline shows up now
	letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil || len(letters) != 0 {
		t.Errorf("%d dead letters (%v), want none", len(letters), err)
	}
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, c := range written {
		if c != 1 {
			twice++
		}
	}
	left := toSum(smPoints(t, reader), "levee.batch.left")
	t.Logf("%d calls; %d of %d orders written more than once; levee.batch.left %d", calls, twice, n, left)
	if left == 0 {
		t.Error("no batch reached the max hold: the test held nothing back")
	}
	if twice != 0 {
		t.Errorf("%d orders written more than once", twice)
	}
	cancel()
	<-ran
}
