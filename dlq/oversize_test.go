package dlq_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
)

// tooLargePublisher refuses a message over limit bytes (payload, keys and
// values) with a *levee.TooLargeError, as Levee's NATS, Kafka and
// RabbitMQ transports report the broker's refusal.
type tooLargePublisher struct {
	*recPublisher
	limit int
	sizes *[]int // the size of every message offered, refused ones included
}

func (p tooLargePublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		n := len(m.Payload)
		for k, v := range m.Metadata {
			n += len(k) + len(v)
		}
		*p.sizes = append(*p.sizes, n)
		if n > p.limit {
			return &levee.TooLargeError{Size: int64(n), Limit: int64(p.limit), Err: errors.New("maximum payload exceeded")}
		}
	}
	return p.recPublisher.Publish(topic, msgs...)
}

func letterSize(m *message.Message) int {
	n := len(m.Payload)
	for k, v := range m.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// TestTooLargeLetterIsCutToItsCore: a message that fits, whose letter the
// broker refuses for its size even compacted, is dead-lettered in the
// same delivery cut to its core: the payload and the producer's metadata
// (a replay's lineage keys included) as they came, Levee's error (cut),
// class, fingerprint, topic, handler and consumer group, and nothing else
// of Levee's.
func TestTooLargeLetterIsCutToItsCore(t *testing.T) {
	producer := message.Metadata{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tenant": "acme"}
	lineage := message.Metadata{"tenant": "acme", dlq.KeyReplayCount: "2", dlq.KeyOriginalUUID: "first"}
	for _, tc := range []struct {
		name string
		md   message.Metadata
		want []string // Levee keys kept beside the core
	}{
		{"producer metadata", producer, nil},
		{"a replay", lineage, []string{dlq.KeyReplayCount, dlq.KeyOriginalUUID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				msg := message.NewMessage("near-1", []byte(strings.Repeat("p", 4000)))
				for k, v := range tc.md {
					msg.Metadata[k] = v
				}
				var sizes []int
				pub := tooLargePublisher{newRecPublisher(), letterSize(msg) + 350, &sizes}
				r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithConsumerGroup("billing"))
				if err != nil {
					t.Fatal(err)
				}
				calls := 0
				h := r.Middleware(failingHandler(&calls, -1, dlq.Permanent(errors.New(strings.Repeat("declined ", 100)))))
				if _, err := h(msg); err != nil {
					t.Fatalf("got %v, want the letter published cut to its core in the first delivery", err)
				}
				dead := pub.published(testDLQ)
				if len(dead) != 1 || len(sizes) != 3 {
					t.Fatalf("%d letters of %d offered (%v), want 1 of 3 (whole, compacted, core)", len(dead), len(sizes), sizes)
				}
				l := dead[0]
				if string(l.Payload) != string(msg.Payload) || l.UUID != msg.UUID {
					t.Errorf("letter %s of %d bytes, want the message's payload whole", l.UUID, len(l.Payload))
				}
				want := map[string]string{dlq.KeyCompacted: dlq.CompactedCore, dlq.KeyErrorClass: "permanent",
					dlq.KeyConsumerGroup: "billing", dlq.KeyFingerprint: l.Metadata[dlq.KeyFingerprint]}
				for k, v := range tc.md {
					want[k] = v
				}
				for k, v := range want {
					if l.Metadata[k] != v {
						t.Errorf("letter's %s = %q, want %q", k, l.Metadata[k], v)
					}
				}
				if e := l.Metadata[dlq.KeyError]; len(e) > dlq.CoreErrorLength || !strings.HasPrefix(e, "declined declined") {
					t.Errorf("letter's error %q (%d bytes), want the reason cut to %d", e, len(e), dlq.CoreErrorLength)
				}
				if len(l.Metadata[dlq.KeyFingerprint]) != 16 {
					t.Errorf("letter's fingerprint %q", l.Metadata[dlq.KeyFingerprint])
				}
				kept := map[string]bool{dlq.KeyError: true, dlq.KeyErrorClass: true, dlq.KeyFingerprint: true,
					dlq.KeyOriginalTopic: true, dlq.KeyHandler: true, dlq.KeyConsumerGroup: true, dlq.KeyCompacted: true}
				for _, k := range tc.want {
					kept[k] = true
				}
				for k := range l.Metadata {
					if _, producers := tc.md[k]; strings.HasPrefix(k, "levee_") && !kept[k] && !producers {
						t.Errorf("letter keeps Levee's %s = %q", k, l.Metadata[k])
					}
				}
			})
		})
	}
}

// TestTooLargeLetterIsNackedLater: a letter too large even cut to its
// core is not published; the message is Nacked with a RetryAfter of at
// least TooLargeRetryAfter (the transport's delayed redelivery), the
// error wraps levee.ErrTooLarge, the failure is logged and counted with
// reason too_large, and a plain publish error with reason publish_error.
func TestTooLargeLetterIsNackedLater(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		var logged []string
		var offered []int
		msg := message.NewMessage("over-1", []byte(strings.Repeat("p", 4000)))
		pub := tooLargePublisher{newRecPublisher(), letterSize(msg) + 20, &offered}
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithLogger(&recLogger{errs: &logged}),
			dlq.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		h := r.Middleware(failingHandler(&calls, -1, dlq.Permanent(errors.New("declined"))))
		_, err = h(msg)
		var pe *dlq.PublishError
		if !errors.As(err, &pe) || !errors.Is(err, levee.ErrTooLarge) {
			t.Fatalf("got %v, want a *PublishError wrapping levee.ErrTooLarge", err)
		}
		if pe.RetryAfter() < dlq.TooLargeRetryAfter {
			t.Errorf("RetryAfter %s, want at least %s", pe.RetryAfter(), dlq.TooLargeRetryAfter)
		}
		if len(offered) != 2 {
			t.Errorf("offered %v, want the whole letter and the core one", offered)
		}
		if len(logged) != 1 || !strings.Contains(logged[0], "too large for the broker") || !strings.Contains(logged[0], "limit") {
			t.Errorf("logged %q, want one error saying the letter is too large, with the limit", logged)
		}
		pub.setFail(errors.New("down"))
		if _, err := r.Middleware(failingHandler(&calls, -1, dlq.Permanent(errors.New("declined"))))(message.NewMessage("down-1", nil)); err == nil {
			t.Fatal("got nil, want a publish error")
		}
		got := publishFailuresByReason(t, reader)
		if got["too_large"] != 1 || got["publish_error"] != 1 || len(got) != 2 {
			t.Errorf("publish failures by reason %v, want too_large 1, publish_error 1", got)
		}
	})
}

func publishFailuresByReason(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "levee.dlq.publish_failures" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key("reason"))
				got[v.AsString()] += dp.Value
			}
		}
	}
	return got
}
