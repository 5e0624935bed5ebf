//go:build integration

package adapters_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
)

// Messages near the broker's size limit. A message that fit made a dead
// letter the broker refused even after Levee's compaction: Levee's failure
// keys (about 1 KB) pushed it over, so the publish failed and the message
// was Nacked and redelivered for ever, its handler's consumer busy with it.

// oversizeMetadata is ordinary producer metadata.
func oversizeMetadata() message.Metadata {
	return message.Metadata{
		"traceparent":    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"content-type":   "application/json",
		"producer":       "orders-api",
		"correlation_id": watermill.NewUUID(),
	}
}

// natsWireSize is the size NATS counts against max_payload for msg as the
// transport writes it (watermill-nats' format: the UUID header and one
// header per metadata entry, none of which needs encoding here).
func natsWireSize(t *testing.T, msg *message.Message) int {
	t.Helper()
	h := http.Header{"_watermill_message_uuid": {msg.UUID}}
	for k, v := range msg.Metadata {
		h[k] = []string{v}
	}
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	if err := h.Write(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\r\n")
	return b.Len() + len(msg.Payload)
}

// natsOversizeMessage returns a message of ordinary metadata whose wire
// size is the server's max_payload (from its INFO) less room bytes.
func natsOversizeMessage(t *testing.T, room int) (*message.Message, int) {
	t.Helper()
	conn, err := nc.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	limit := int(conn.MaxPayload())
	conn.Close()
	msg := message.NewMessage(watermill.NewUUID(), nil)
	msg.Metadata = oversizeMetadata()
	msg.Payload = bytes.Repeat([]byte("x"), limit-room-natsWireSize(t, msg))
	if got := natsWireSize(t, msg); got != limit-room {
		t.Fatalf("message of %d bytes, want %d", got, limit-room)
	}
	return msg, limit
}

// oversizeService runs a service on NATS whose handler h fails every
// message permanently; it returns the service, the topic, the dead letters
// and the metric reader.
func oversizeService(t *testing.T, yaml string, calls *atomic.Int64) (*service.Service, string, <-chan *message.Message, *sdkmetric.ManualReader) {
	t.Helper()
	topic := brokertest.Name("oversize")
	cfg, err := config.Parse("levee.yaml", []byte(yaml), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	svc, err := service.New(context.Background(), cfg, config.Deps{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = svc.Transport.DeleteTopics(context.Background(), topic, topic+".dlq")
		_ = svc.Close()
	})
	svc.Handle("h", topic, func(*message.Message) error {
		calls.Add(1)
		return dlq.Permanent(fmt.Errorf("card declined by the issuer"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	letters, err := svc.Transport.Subscriber.Subscribe(ctx, topic+".dlq")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-svc.Running()
	return svc, topic, letters, reader
}

const natsOversizeYAML = "transport: {kind: nats, concurrency: 1, ack_deadline: 30s, nats: {url: %q}}\nhandlers:\n  h:\n    dlq: {}\n"

// awaitCoreLetter waits up to d for a dead letter, acks it, and checks that
// it is msg (UUID, payload and producer metadata byte for byte) with want
// among Levee's keys.
func awaitCoreLetter(t *testing.T, letters <-chan *message.Message, d time.Duration, calls *atomic.Int64, msg *message.Message, want map[string]string) *message.Message {
	t.Helper()
	var l *message.Message
	select {
	case l = <-letters:
		l.Ack()
	case <-time.After(d):
		t.Fatalf("no dead letter after %s (handler called %d times)", d, calls.Load())
	}
	if !bytes.Equal(l.Payload, msg.Payload) || l.UUID != msg.UUID {
		t.Errorf("letter %s of %d bytes, want the message %s of %d bytes", l.UUID, len(l.Payload), msg.UUID, len(msg.Payload))
	}
	for k, v := range msg.Metadata {
		if l.Metadata[k] != v {
			t.Errorf("letter's %s = %q, want the producer's %q", k, l.Metadata[k], v)
		}
	}
	for k, w := range want {
		if got := l.Metadata[k]; got != w {
			t.Errorf("letter's %s = %q, want %q", k, got, w)
		}
	}
	return l
}

// TestNATSDeadLetterNearMaxPayload: a message 300 bytes under the server's
// max_payload, with ordinary producer metadata, whose handler fails
// permanently, is dead-lettered: the letter keeps the payload and the
// producer's metadata byte for byte and Levee's essential keys (error,
// class, fingerprint, topic, handler), and says it is cut to them.
func TestNATSDeadLetterNearMaxPayload(t *testing.T) {
	brokertest.SkipIfDown(t, natsURL)
	msg, _ := natsOversizeMessage(t, 300)
	var calls atomic.Int64
	svc, topic, letters, _ := oversizeService(t, fmt.Sprintf(natsOversizeYAML, natsURL), &calls)
	if err := svc.Transport.Publisher.Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
	l := awaitCoreLetter(t, letters, 20*time.Second, &calls, msg, map[string]string{
		dlq.KeyOriginalTopic: topic, dlq.KeyHandler: "h", dlq.KeyErrorClass: string(levee.ClassPermanent),
		dlq.KeyError: "card declined by the issuer", dlq.KeyCompacted: dlq.CompactedCore,
	})
	if len(l.Metadata[dlq.KeyFingerprint]) != 16 {
		t.Errorf("letter's fingerprint %q, want 16 hex digits", l.Metadata[dlq.KeyFingerprint])
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

// TestNATSDeadLetterOverMaxPayload: a message 20 bytes under max_payload
// cannot have a letter even cut to its core. It is not acked and not
// lost; it is Nacked with a delay NATS honours (not redelivered at once,
// over and over), counted in levee.dlq.publish_failures with reason
// too_large, and the handler is not called again.
func TestNATSDeadLetterOverMaxPayload(t *testing.T) {
	brokertest.SkipIfDown(t, natsURL)
	msg, _ := natsOversizeMessage(t, 20)
	var calls atomic.Int64
	svc, topic, letters, reader := oversizeService(t, fmt.Sprintf(natsOversizeYAML, natsURL), &calls)
	if err := svc.Transport.Publisher.Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
	// The first refusal is counted at once; the deliveries are counted
	// for 5 s after it.
	deadline := time.Now().Add(20 * time.Second)
	for publishFailures(t, reader, "too_large") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no publish failure with reason too_large after 20s (handler called %d times)", calls.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case l := <-letters:
		l.Ack()
		t.Fatalf("a letter of %d bytes went through", len(l.Payload))
	case <-time.After(5 * time.Second):
	}
	conn, err := nc.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	stream := strings.ReplaceAll(topic, ".", "_")
	var delivered uint64
	var pending int
	for ci := range js.ConsumersInfo(stream) {
		delivered += ci.Delivered.Consumer
		pending += ci.NumAckPending
	}
	if pending != 1 {
		t.Errorf("%d messages pending an ack, want the one (never acked, never lost)", pending)
	}
	if delivered > 2 {
		t.Errorf("delivered %d times in 5 s, want 1 or 2: a Nack without delay loops", delivered)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

// publishFailures sums levee.dlq.publish_failures with the given reason.
func publishFailures(t *testing.T, reader *sdkmetric.ManualReader, reason string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "levee.dlq.publish_failures" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, ok := dp.Attributes.Value(attribute.Key("reason")); ok && v.AsString() == reason {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// TestNATSTooLargeError: the transport reports a message over the
// server's max_payload as a *levee.TooLargeError with its size as NATS
// counts it and the limit from the server's INFO.
func TestNATSTooLargeError(t *testing.T) {
	brokertest.SkipIfDown(t, natsURL)
	msg, limit := natsOversizeMessage(t, -1)
	var calls atomic.Int64
	svc, topic, _, _ := oversizeService(t, fmt.Sprintf(natsOversizeYAML, natsURL), &calls)
	err := svc.Transport.Publisher.Publish(topic, msg)
	var tl *levee.TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, levee.ErrTooLarge) || !errors.Is(err, nc.ErrMaxPayload) {
		t.Fatalf("got %v, want a *levee.TooLargeError wrapping nats.ErrMaxPayload", err)
	}
	if tl.Size != int64(limit+1) || tl.Limit != int64(limit) {
		t.Errorf("size %d, limit %d; want %d, %d", tl.Size, tl.Limit, limit+1, limit)
	}
}

// amqpHeaderFrame is the content-header frame payload of msg as the
// transport writes it: class, weight, body size, flags, delivery mode and
// a table of string headers (the metadata and the UUID).
func amqpHeaderFrame(msg *message.Message) int {
	n := 2 + 2 + 8 + 2 + 1 + 4 + 1 + len("_watermill_message_uuid") + 5 + len(msg.UUID)
	for k, v := range msg.Metadata {
		n += 1 + len(k) + 5 + len(v)
	}
	return n
}

// TestAMQPDeadLetterNearFrameMax: RabbitMQ carries a message's metadata in
// one frame (frame_max, 128 KiB by default). A message whose headers were
// 300 bytes under it made a letter whose headers were over: RabbitMQ
// closed the whole connection at each try (501 FRAME_ERROR), the
// consumers' acks failed with it, and the message came back to the
// handler. Now the letter is cut to its core and published once; the
// message is acked and the handler called once.
func TestAMQPDeadLetterNearFrameMax(t *testing.T) {
	brokertest.SkipIfDown(t, amqpURL)
	var calls atomic.Int64
	svc, topic, letters, _ := oversizeService(t, fmt.Sprintf("transport: {kind: amqp, concurrency: 1, amqp: {url: %q}}\nhandlers:\n  h:\n    dlq: {}\n", amqpURL), &calls)
	probe := message.NewMessage(watermill.NewUUID(), nil)
	probe.Metadata.Set("bulk", strings.Repeat("b", 1<<20))
	var tl *levee.TooLargeError
	if err := svc.Transport.Publisher.Publish(topic+".probe", probe); !errors.As(err, &tl) || tl.Limit <= 0 {
		t.Fatalf("headers of 1 MiB: got %v, want a *levee.TooLargeError with the limit", err)
	}
	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"order":1}`))
	msg.Metadata = oversizeMetadata()
	msg.Metadata.Set("bulk", "")
	msg.Metadata.Set("bulk", strings.Repeat("b", int(tl.Limit)-300-amqpHeaderFrame(msg)))
	if err := svc.Transport.Publisher.Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-letters:
		l.Ack()
		if l.Metadata[dlq.KeyCompacted] != dlq.CompactedCore || l.Metadata["bulk"] != msg.Metadata["bulk"] {
			t.Errorf("letter compacted %q, bulk of %d bytes; want core, the producer's %d", l.Metadata[dlq.KeyCompacted], len(l.Metadata["bulk"]), len(msg.Metadata["bulk"]))
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no dead letter after 20s (handler called %d times)", calls.Load())
	}
	select {
	case l := <-letters:
		l.Ack()
		t.Errorf("a second letter (compacted %q): the message came back", l.Metadata[dlq.KeyCompacted])
	case <-time.After(3 * time.Second):
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	_ = svc.Transport.DeleteTopics(context.Background(), topic+".probe")
}

// TestNATSStreamMaxMsgSize: a dead-letter stream an operator gave a
// max_msg_size refuses a letter over it with a JetStream error, which
// the transport reports as a *levee.TooLargeError with the stream's
// limit, so the letter is cut to its core as for max_payload.
func TestNATSStreamMaxMsgSize(t *testing.T) {
	brokertest.SkipIfDown(t, natsURL)
	var calls atomic.Int64
	svc, topic, letters, _ := oversizeService(t, fmt.Sprintf(natsOversizeYAML, natsURL), &calls)
	msg := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("x"), 10_000))
	msg.Metadata = oversizeMetadata()
	conn, err := nc.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	stream := strings.ReplaceAll(topic+".dlq", ".", "_")
	limit := natsWireSize(t, msg) + 300
	info, err := js.StreamInfo(stream) // the service's DLQ subscription made it
	if err != nil {
		t.Fatal(err)
	}
	info.Config.MaxMsgSize = int32(limit)
	if _, err := js.UpdateStream(&info.Config); err != nil {
		t.Fatal(err)
	}
	big := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("x"), limit+1))
	var tl *levee.TooLargeError
	if err := svc.Transport.Publisher.Publish(topic+".dlq", big); !errors.As(err, &tl) || tl.Limit != int64(limit) {
		t.Fatalf("got %v, want a *levee.TooLargeError with the stream's limit %d", err, limit)
	}
	if err := svc.Transport.Publisher.Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-letters:
		l.Ack()
		if l.Metadata[dlq.KeyCompacted] != dlq.CompactedCore || !bytes.Equal(l.Payload, msg.Payload) {
			t.Errorf("letter compacted %q with %d bytes, want core with the payload", l.Metadata[dlq.KeyCompacted], len(l.Payload))
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no dead letter after 20s (handler called %d times)", calls.Load())
	}
}
