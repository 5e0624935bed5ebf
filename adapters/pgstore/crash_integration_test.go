//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

func amqpURL() string { return brokertest.AMQPURL() }

func amqpTransport(t *testing.T) *adapters.Transport {
	t.Helper()
	brokertest.SkipIfDown(t, amqpURL())
	tr, err := adapters.Build(context.Background(), adapters.TransportConfig{Kind: adapters.KindAMQP,
		AMQP: &adapters.AMQPConfig{URL: amqpURL()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// idsStore records the IDs each Add was given.
type idsStore struct {
	*pgstore.Store
	mu  sync.Mutex
	ids map[string]int
}

func (s *idsStore) Add(ctx context.Context, recs ...dlqops.Record) (int, error) {
	n, err := s.Store.Add(ctx, recs...)
	if err == nil {
		s.mu.Lock()
		for _, r := range recs {
			s.ids[r.ID]++
		}
		s.mu.Unlock()
	}
	return n, err
}

// TestMonitorCrashMidIngestLosesNothing: a monitor consuming a RabbitMQ DLQ
// queue "crashes" (its connection drops) right after the store committed a
// letter and before the ack, with more letters delivered but unacked. A new
// monitor process gets every unacked letter again; the store ends with
// every letter exactly once.
func TestMonitorCrashMidIngestLosesNothing(t *testing.T) {
	const total, crashAt = 60, 25
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := newSchema(t)
	topic := "levee_test_dlq_" + schema[len("levee_test_"):]
	t.Cleanup(func() {
		conn, err := amqp091.Dial(amqpURL())
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(topic, false, false, false)
			_ = ch.Close()
		}
	})

	// phase 1: the monitor that crashes
	tr1 := amqpTransport(t)
	s1 := &idsStore{Store: openStore(t, schema), ids: map[string]int{}}
	mon1, err := dlqops.NewMonitor(s1)
	if err != nil {
		t.Fatal(err)
	}
	sub1ctx, stop1 := context.WithCancel(ctx)
	msgs, err := tr1.Subscriber.Subscribe(sub1ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range total {
		m := message.NewMessage(fmt.Sprintf("dl-%03d", i), []byte(fmt.Sprintf(`{"n":%d}`, i)))
		m.Metadata[dlq.KeyOriginalTopic] = "orders"
		m.Metadata[dlq.KeyFingerprint] = "0123456789abcdef"
		m.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(at.Add(time.Duration(i) * time.Second))
		if err := tr1.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	var crashedID string
	for i := 0; i < crashAt; i++ {
		var m *message.Message
		select {
		case m = <-msgs:
		case <-ctx.Done():
			t.Fatal("phase 1: no message")
		}
		if err := mon1.Handle(m); err != nil {
			t.Fatal(err)
		}
		if i == crashAt-1 {
			// stored, never acked; the ID the monitor gave it (it has no
			// subscribed topic here, so the DLQ topic is the letter's key)
			crashedID = dlqops.NewRecord(m, m.Metadata[dlq.KeyDLQTopic], at).ID
			break
		}
		m.Ack()
	}
	// crash: the connection drops with the last letter stored but unacked
	stop1()
	if err := tr1.Close(); err != nil {
		t.Logf("close after crash: %v", err)
	}

	// phase 2: a new monitor process drains the queue
	tr2 := amqpTransport(t)
	defer tr2.Close()
	s2 := &idsStore{Store: openStore(t, schema), ids: map[string]int{}}
	mon2, err := dlqops.NewMonitor(s2)
	if err != nil {
		t.Fatal(err)
	}
	msgs2, err := tr2.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for {
		letters, err := s2.List(ctx, dlqops.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(letters) == total {
			break
		}
		select {
		case m := <-msgs2:
			if err := mon2.Handle(m); err != nil {
				m.Nack()
				continue
			}
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("phase 2: stored %d of %d", len(letters), total)
		}
	}
	// the crashed letter came back and was recognised as stored
	deadline := time.After(10 * time.Second)
	for {
		s2.mu.Lock()
		seen := s2.ids[crashedID]
		s2.mu.Unlock()
		if seen > 0 {
			break
		}
		select {
		case m := <-msgs2:
			_ = mon2.Handle(m)
			m.Ack()
		case <-deadline:
			t.Fatalf("the letter stored before the crash (%s) was not redelivered", crashedID)
		}
	}
	letters, _ := s2.List(ctx, dlqops.Filter{})
	if len(letters) != total {
		t.Errorf("stored %d letters want %d", len(letters), total)
	}
}
