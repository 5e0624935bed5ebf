//go:build integration

package adapters_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
)

// kafkaBatchSizes records the size of every record batch produced to
// each topic of c, as the broker checks it against max.message.bytes.
type kafkaBatchSizes struct {
	mu    sync.Mutex
	sizes map[string][]int // guarded by mu
}

func watchKafkaBatches(c *kfake.Cluster) *kafkaBatchSizes {
	w := &kafkaBatchSizes{sizes: map[string][]int{}}
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range kreq.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				w.mu.Lock()
				w.sizes[rt.Topic] = append(w.sizes[rt.Topic], len(rp.Records))
				w.mu.Unlock()
			}
		}
		return nil, nil, false
	})
	return w
}

func (w *kafkaBatchSizes) of(topic string) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.sizes[topic]...)
}

// kafkaMaxMessageBytes is kfake's (and Kafka's) default message.max.bytes.
const kafkaMaxMessageBytes = 1048588

// TestKafkaDeadLetterNearMaxMessageBytes is TestNATSDeadLetterNearMaxPayload
// and TestNATSDeadLetterOverMaxPayload on Kafka (the in-process kfake
// broker enforces message.max.bytes): a message whose record batch is 300
// bytes under the limit is dead-lettered cut to its core; one 20 bytes
// under stays on its partition, not acked, counted with reason too_large,
// the handler not called again.
func TestKafkaDeadLetterNearMaxMessageBytes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	batches := watchKafkaBatches(c)
	yaml := fmt.Sprintf("transport: {kind: kafka, concurrency: 1, kafka: {brokers: [%q]}}\nhandlers:\n  h:\n    dlq: {}\n", c.ListenAddrs()[0])

	// A probe of about the size to send tells the batch overhead of a
	// message with this metadata (the varints are as wide at 1 MB).
	probe := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("x"), 1_000_000))
	probe.Metadata = oversizeMetadata()
	var calls atomic.Int64
	svc, topic, letters, reader := oversizeService(t, yaml, &calls)
	probeTopic := topic + "_probe"
	if err := svc.Transport.Publisher.Publish(probeTopic, probe); err != nil {
		t.Fatal(err)
	}
	sizes := batches.of(probeTopic)
	if len(sizes) != 1 {
		t.Fatalf("probe batches %v, want one", sizes)
	}
	overhead := sizes[0] - len(probe.Payload)
	send := func(room int) *message.Message {
		m := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("x"), kafkaMaxMessageBytes-room-overhead))
		m.Metadata = oversizeMetadata()
		for k, v := range probe.Metadata {
			m.Metadata[k] = v
		}
		m.Metadata["correlation_id"] = probe.Metadata["correlation_id"]
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	// The transport reports a refusal for size with the topic's limit.
	over := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("x"), kafkaMaxMessageBytes))
	var tl *levee.TooLargeError
	if err := svc.Transport.Publisher.Publish(probeTopic, over); !errors.As(err, &tl) || tl.Limit != kafkaMaxMessageBytes {
		t.Fatalf("got %v, want a *levee.TooLargeError with limit %d", err, kafkaMaxMessageBytes)
	}

	near := send(300)
	if s := batches.of(topic); len(s) != 1 || s[0] != kafkaMaxMessageBytes-300 {
		t.Fatalf("batches %v, want one of %d bytes", s, kafkaMaxMessageBytes-300)
	}
	awaitCoreLetter(t, letters, 30*time.Second, &calls, near, map[string]string{
		dlq.KeyOriginalTopic: topic, dlq.KeyHandler: "h", dlq.KeyErrorClass: string(levee.ClassPermanent),
		dlq.KeyCompacted: dlq.CompactedCore,
	})

	send(20)
	deadline := time.Now().Add(30 * time.Second)
	for publishFailures(t, reader, "too_large") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no publish failure with reason too_large after 30s (handler called %d times)", calls.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case l := <-letters:
		l.Ack()
		t.Fatalf("a letter of %d bytes went through", len(l.Payload))
	case <-time.After(3 * time.Second):
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times, want 2 (once per message)", n)
	}
	// Its delivery tried the whole letter and the core one (the compacted
	// one would change nothing); a redelivery at once would try them again.
	var refused int
	for _, s := range batches.of(dlq.DefaultTopic(topic)) {
		if s > kafkaMaxMessageBytes {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d dead letters refused for size (%v), want 3: the near message's whole one, the other's whole and core ones", refused, batches.of(dlq.DefaultTopic(topic)))
	}
}
