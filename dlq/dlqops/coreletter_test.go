package dlqops_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// sizePublisher takes one letter of at most limit bytes (payload, keys
// and values) and refuses larger ones for their size.
type sizePublisher struct {
	limit int
	got   *message.Message
}

func (p *sizePublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		n := len(m.Payload)
		for k, v := range m.Metadata {
			n += len(k) + len(v)
		}
		if n > p.limit {
			return &levee.TooLargeError{Size: int64(n), Limit: int64(p.limit)}
		}
		p.got = m
	}
	return nil
}

func (p *sizePublisher) Close() error { return nil }

// TestCoreLetterRecord: a letter cut to its core (the broker refused it
// whole for its size) is stored like any other: its group, class, topic,
// handler and consumer group as the letter names them, attempts 0 and
// the failure time its arrival, and the same identity for the consumer.
func TestCoreLetterRecord(t *testing.T) {
	msg := message.NewMessage("m-1", make([]byte, 2000))
	msg.Metadata.Set("tenant", "acme")
	pub := &sizePublisher{limit: 2000 + len("tenant") + len("acme") + 300}
	r, err := dlq.New(pub, dlq.WithTopic("orders.dlq"), dlq.WithConsumerGroup("billing"))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, dlq.Permanent(errors.New("card declined"))
	})
	if _, err := h(msg); err != nil {
		t.Fatal(err)
	}
	if pub.got == nil || pub.got.Metadata[dlq.KeyCompacted] != dlq.CompactedCore {
		t.Fatalf("letter %v, want one cut to its core", pub.got)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := dlqops.NewRecord(pub.got, "orders.dlq", now)
	if rec.Fingerprint != pub.got.Metadata[dlq.KeyFingerprint] || rec.ErrorClass != "permanent" || rec.ConsumerGroup != "billing" ||
		rec.Error != "card declined" || rec.Attempts != 0 || !rec.FailedAt.Equal(now) || rec.OriginalUUID != "m-1" || rec.Metadata["tenant"] != "acme" {
		t.Errorf("record %+v", rec)
	}
}
