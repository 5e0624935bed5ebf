//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// bbYAML is a batch handler whose breaker opens in the middle of the
// traffic: whole batches fail during an outage.
const bbYAML = `transport: %s
handlers:
  ledger:
    recover: true
    timeout: 5s
    dlq: {retry: {max_attempts: 3, initial: 20ms, max: 50ms}}
    dedup: {key: {metadata: order_id}}
    breaker: {consecutive_failures: 5, open_for: 300ms, drain: {window: 500ms}}
    batch: {max_size: 8, max_wait: 50ms}
`

// TestBatchBreakerOpensMidTraffic: during an outage the batch func fails
// whole batches, the breaker opens and holds the messages that come
// after; when the downstream is back every message is written once or
// dead-lettered as exhausted (its own attempts spent), and the two add up
// to what was published.
func TestBatchBreakerOpensMidTraffic(t *testing.T) {
	onEachTransport(t, 2, bbRun)
}

func bbRun(t *testing.T, transport string, settled func(t *testing.T)) {
	topic := brokertest.Name("svc_batch_breaker")
	svc, closeSvc := newTopicService(t, fmt.Sprintf(bbYAML, transport), config.Deps{}, topic)
	defer closeSvc()
	var down atomic.Bool
	var mu sync.Mutex
	written := map[string]int{}
	if err := svc.HandleBatch("ledger", topic, func(_ context.Context, msgs []*message.Message) error {
		if down.Load() {
			return errors.New("downstream down")
		}
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
	const n = 200
	go func() {
		time.Sleep(100 * time.Millisecond)
		down.Store(true)
		time.Sleep(time.Second)
		down.Store(false)
	}()
	for i := range n {
		m := message.NewMessage(watermill.NewUUID(), []byte("row"))
		m.Metadata.Set("order_id", "o"+strconv.Itoa(i))
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var letters []dlqops.Record
	var err error
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		letters, err = svc.Store.List(context.Background(), dlqops.Filter{})
		mu.Lock()
		w := len(written)
		mu.Unlock()
		if err == nil && w+len(letters) >= n {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after 60 s %d written + %d dead letters (%v) of %d", w, len(letters), err, n)
		}
	}
	time.Sleep(time.Second)
	letters, err = svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	classes := map[string]int{}
	for _, l := range letters {
		o := l.Metadata["order_id"]
		classes[l.ErrorClass+" "+strconv.Itoa(l.Attempts)]++
		if written[o] != 0 {
			t.Errorf("%s written and dead-lettered", o)
		}
	}
	for o, c := range written {
		if c != 1 {
			t.Errorf("%s written %d times", o, c)
		}
	}
	t.Logf("%d written, %d dead letters by class and attempts %v", len(written), len(letters), classes)
	if len(written)+len(letters) != n {
		t.Errorf("%d written + %d dead letters, want %d", len(written), len(letters), n)
	}
	for k := range classes {
		if k != "exhausted 3" {
			t.Errorf("dead letters %s, want exhausted after 3 attempts", k)
		}
	}
	cancel()
	<-ran
}
