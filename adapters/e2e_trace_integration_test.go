//go:build integration

package adapters_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/tracing"
)

// One trace crosses a real RabbitMQ hop and a Kafka hop (in-process kfake
// broker): a producer span (tracing.DecoratePublisher) publishes to a
// RabbitMQ queue; a router handler traced by tracing.Middleware consumes it
// and produces a message that the router publishes to Kafka through a
// decorated publisher; a second traced handler consumes it. The recorded
// spans share one trace id and chain producer -> consumer -> producer ->
// consumer, with messaging.system rabbitmq then kafka.
func TestE2ETraceAcrossRabbitMQAndKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	run := watermill.NewShortUUID()
	queue := "levee-e2e-trace-rabbitmq-" + run
	topic := "levee-e2e-trace-kafka-" + run
	group := "levee-e2e-trace-" + run

	rabbit := e2eTraceTransport(t, ctx, adapters.WithAMQP(amqpURL))
	t.Cleanup(func() { e2eTraceDeleteQueue(t, queue) })
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close) // after the Kafka transport's cleanup (LIFO)
	kafka := e2eTraceTransport(t, ctx, adapters.WithKafka(cluster.ListenAddrs()...), adapters.WithConsumerGroup(group))

	// One Tracer per transport, its system taken from the capabilities.
	rabbitTracer := e2eTraceTracer(t, tp, rabbit.Capabilities.System)
	kafkaTracer := e2eTraceTracer(t, tp, kafka.Capabilities.System)
	rabbitPub, err := rabbitTracer.DecoratePublisher(rabbit.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	kafkaPub, err := kafkaTracer.DecoratePublisher(kafka.Publisher)
	if err != nil {
		t.Fatal(err)
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	// Hop 1: RabbitMQ -> handler -> Kafka.
	router.AddHandler("e2e-trace-rabbitmq", queue, rabbit.Subscriber, topic, kafkaPub,
		func(msg *message.Message) ([]*message.Message, error) {
			return []*message.Message{message.NewMessage(watermill.NewUUID(), append([]byte("forwarded "), msg.Payload...))}, nil
		}).AddMiddleware(rabbitTracer.Middleware)
	// Hop 2: Kafka -> handler.
	received := make(chan string, 1)
	router.AddConsumerHandler("e2e-trace-kafka", topic, kafka.Subscriber, func(msg *message.Message) error {
		select {
		case received <- string(msg.Payload):
		default:
		}
		return nil
	}).AddMiddleware(kafkaTracer.Middleware)

	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	t.Cleanup(func() {
		_ = router.Close()
		select {
		case err := <-routerDone:
			if err != nil {
				t.Errorf("router: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("router did not stop")
		}
	})
	select {
	case <-router.Running():
	case <-ctx.Done():
		t.Fatal("router did not start")
	}

	if err := rabbitPub.Publish(queue, message.NewMessage(watermill.NewUUID(), []byte("order 42"))); err != nil {
		t.Fatalf("publish to RabbitMQ: %v", err)
	}
	select {
	case got := <-received:
		if got != "forwarded order 42" {
			t.Fatalf("Kafka consumer got %q, want %q", got, "forwarded order 42")
		}
	case <-ctx.Done():
		t.Fatal("the message did not cross RabbitMQ and Kafka in time")
	}

	// The Kafka consumer span ends when its handler returns; wait for it.
	names := []string{"publish " + queue, "process " + queue, "publish " + topic, "process " + topic}
	spans := e2eTraceWaitSpans(t, ctx, rec, names)

	want := []struct {
		kind   trace.SpanKind
		system string
		dest   string
	}{
		{trace.SpanKindProducer, "rabbitmq", queue},
		{trace.SpanKindConsumer, "rabbitmq", queue},
		{trace.SpanKindProducer, "kafka", topic},
		{trace.SpanKindConsumer, "kafka", topic},
	}
	traceID := spans[0].SpanContext().TraceID()
	if spans[0].Parent().IsValid() {
		t.Errorf("%s: got parent %s, want a root span", names[0], spans[0].Parent().SpanID())
	}
	for i, s := range spans {
		if got := s.SpanContext().TraceID(); got != traceID {
			t.Errorf("%s: got trace id %s, want %s (one trace)", names[i], got, traceID)
		}
		if s.SpanKind() != want[i].kind {
			t.Errorf("%s: got kind %s, want %s", names[i], s.SpanKind(), want[i].kind)
		}
		attrs := attribute.NewSet(s.Attributes()...)
		if v, _ := attrs.Value("messaging.system"); v.AsString() != want[i].system {
			t.Errorf("%s: got messaging.system %q, want %q", names[i], v.AsString(), want[i].system)
		}
		if v, _ := attrs.Value("messaging.destination.name"); v.AsString() != want[i].dest {
			t.Errorf("%s: got messaging.destination.name %q, want %q", names[i], v.AsString(), want[i].dest)
		}
		if i > 0 {
			if got, parent := s.Parent().SpanID(), spans[i-1].SpanContext().SpanID(); got != parent {
				t.Errorf("%s: got parent span %s, want %s (%s)", names[i], got, parent, names[i-1])
			}
		}
	}
	for _, i := range []int{1, 3} {
		attrs := attribute.NewSet(spans[i].Attributes()...)
		if v, _ := attrs.Value("levee.outcome"); v.AsString() != "acked" {
			t.Errorf("%s: got levee.outcome %q, want acked", names[i], v.AsString())
		}
	}
}

// e2eTraceTransport builds a transport and closes it at cleanup.
func e2eTraceTransport(t *testing.T, ctx context.Context, opts ...adapters.Option) *adapters.Transport {
	t.Helper()
	tr, err := adapters.New(ctx, opts...)
	if err != nil {
		t.Fatalf("transport: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func e2eTraceTracer(t *testing.T, tp trace.TracerProvider, system string) *tracing.Tracer {
	t.Helper()
	tr, err := tracing.New(tracing.WithTracerProvider(tp), tracing.WithSystem(system))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// e2eTraceWaitSpans waits until rec holds an ended span for every name and
// returns them in the order of names (the first one recorded per name).
func e2eTraceWaitSpans(t *testing.T, ctx context.Context, rec *tracetest.SpanRecorder, names []string) []sdktrace.ReadOnlySpan {
	t.Helper()
	for {
		byName := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			if _, ok := byName[s.Name()]; !ok {
				byName[s.Name()] = s
			}
		}
		out := make([]sdktrace.ReadOnlySpan, 0, len(names))
		for _, n := range names {
			if s, ok := byName[n]; ok {
				out = append(out, s)
			}
		}
		if len(out) == len(names) {
			return out
		}
		select {
		case <-ctx.Done():
			var got []string
			for n := range byName {
				got = append(got, n)
			}
			t.Fatalf("got spans [%s], want %v", strings.Join(got, ", "), names)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// e2eTraceDeleteQueue deletes the test's RabbitMQ queue.
func e2eTraceDeleteQueue(t *testing.T, queue string) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Errorf("deleting queue %s: %v", queue, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("deleting queue %s: %v", queue, err)
		return
	}
	defer ch.Close()
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		t.Errorf("deleting queue %s: %v", queue, err)
	}
}
