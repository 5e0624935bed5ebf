//go:build integration

package service_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
)

// bcYAML is a batch handler whose func is running, with a half-full batch
// waiting behind it, when the service is closed.
const bcYAML = `transport: %s
handlers:
  ledger:
    recover: true
    timeout: 20s
    dlq: {retry: {max_attempts: 3, initial: 20ms, max: 50ms}}
    dedup: {key: {metadata: order_id}}
    batch: {max_size: 4, max_wait: %s, max_in_flight: 1}
`

// TestBatchCloseWithAFuncRunning closes a service while its batch func
// writes a full batch (and, with a long max_wait, a second batch is half
// full), then starts another service on the queue: every message is
// written, and none of the batch the func wrote during Close is written a
// second time (its verdict was acked, not dropped or Nacked).
func TestBatchCloseWithAFuncRunning(t *testing.T) {
	onEachTransport(t, 1, bcRun)
}

type bcSink struct {
	mu      sync.Mutex
	written map[string]int
	calls   []string
}

func bcStart(t *testing.T, transport, topic, maxWait string, sink *bcSink, slow time.Duration, inFunc chan<- struct{}) (*service.Service, func()) {
	svc, err := service.New(context.Background(), parse(t, fmt.Sprintf(bcYAML, transport, maxWait)), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	if err := svc.HandleBatch("ledger", topic, func(ctx context.Context, msgs []*message.Message) error {
		once.Do(func() {
			if inFunc != nil {
				close(inFunc)
			}
			time.Sleep(slow) // the write the Close finds running
		})
		sink.mu.Lock()
		defer sink.mu.Unlock()
		var ids []string
		for _, m := range msgs {
			sink.written[m.Metadata.Get("order_id")]++
			ids = append(ids, m.Metadata.Get("order_id"))
		}
		sink.calls = append(sink.calls, fmt.Sprint(ids))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Running()
	return svc, func() { cancel(); <-ran }
}

func bcRun(t *testing.T, transport string, settled func(t *testing.T)) {
	topic := brokertest.Name("svc_batch_close")
	sink := &bcSink{written: map[string]int{}}
	inFunc := make(chan struct{})
	svc, stop := bcStart(t, transport, topic, "10s", sink, 2*time.Second, inFunc)
	if settled != nil {
		settled(t)
	}
	const n = 6 // a full batch of 4 in the func, 2 in an open batch
	for i := range n {
		m := message.NewMessage(watermill.NewUUID(), []byte("row"))
		m.Metadata.Set("order_id", fmt.Sprintf("o%d", i))
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-inFunc:
	case <-time.After(30 * time.Second):
		t.Fatal("the func never ran")
	}
	time.Sleep(300 * time.Millisecond) // the other two join the next batch
	start := time.Now()
	if err := svc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	stop()
	t.Logf("closed in %v", time.Since(start))

	next, stopNext := bcStart(t, transport, topic, "50ms", sink, 0, nil)
	defer func() {
		_ = next.Transport.DeleteTopics(context.Background(), topic, dlq.DefaultTopic(topic))
		_ = next.Close()
		stopNext()
	}()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		sink.mu.Lock()
		w := len(sink.written)
		sink.mu.Unlock()
		if w == n {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after 30 s %d of %d messages written: %v", w, n, sink.calls)
		}
	}
	time.Sleep(2 * time.Second) // a redelivery of a written one shows up now
	sink.mu.Lock()
	defer sink.mu.Unlock()
	t.Logf("calls: %v", sink.calls)
	for o, c := range sink.written {
		if c != 1 {
			t.Errorf("%s written %d times, want once", o, c)
		}
	}
}
