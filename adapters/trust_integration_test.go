//go:build integration

package adapters_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	nc "github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/ratelimit"
)

// xDeliveryCount is RabbitMQ's delivery count header (quorum queues).
const xDeliveryCount = "x-delivery-count"

// xAcquiredCount is RabbitMQ 4.3's count of every delivery (quorum queues).
const xAcquiredCount = "x-acquired-count"

// Levee trusts only itself (issue 14): a producer's levee_delivery_count,
// levee_retry_after and levee_redeliver_at never steer a consumer. Before
// the trust boundary, levee_delivery_count "99" from a producer on RabbitMQ
// classic, Redis Streams or GoChannel gave one handler call and a dead
// letter with attempts=99; a forged levee_retry_after of 1h survived a shed
// on NATS and parked the message for an hour; a levee_redeliver_at far in
// the future hid a PostgreSQL-transport message. A producer's
// x-delivery-count 99 (an AMQP long) on RabbitMQ became
// levee_delivery_count 100 on classic queues and on a quorum queue's first
// delivery: one handler call and a dead letter with attempts=100.

// forgedControl sets every control key as a hostile producer would.
func forgedControl(m *message.Message) {
	m.Metadata.Set(levee.KeyDeliveryCount, "99")
	m.Metadata.Set(levee.KeyRetryAfter, "1h")
	m.Metadata.Set(levee.KeyRedeliverAt, strconv.FormatInt(time.Now().AddDate(10, 0, 0).UnixMilli(), 10))
}

// hostilePublish publishes msg to topic past Levee's publisher (which
// strips control keys on egress): with the broker's own client where the
// test has one, else with the Watermill publisher Levee wraps. The topic's
// queue, stream or table must exist (the router subscribed). A message
// without a UUID goes without the UUID header on RabbitMQ and NATS, and
// with an empty one elsewhere (a Redis entry without the field is
// undecodable: TestRedisUndecodableEntry).
func hostilePublish(t *testing.T, tc transportCase, tr *adapters.Transport, topic string, msg *message.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch tc.name {
	case "amqp_classic", "amqp_quorum":
		// With the broker's own delivery count header too, typed as a
		// quorum queue writes it: a classic queue passes it through on
		// every delivery, a quorum queue on the first.
		publishAMQPHeaders(t, topic, msg, amqp.Table{xDeliveryCount: int64(99)})
	case "nats":
		conn, err := nc.Connect(natsURL)
		require.NoError(t, err)
		defer conn.Close()
		js, err := conn.JetStream()
		require.NoError(t, err)
		m := nc.NewMsg(topic)
		if msg.UUID != "" {
			m.Header.Set(wnats.WatermillUUIDHdr, msg.UUID)
		}
		for k, v := range msg.Metadata {
			m.Header.Set(k, v)
		}
		m.Data = msg.Payload
		_, err = js.PublishMsg(m, nc.Context(ctx))
		require.NoError(t, err)
	case "redis":
		client := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer client.Close()
		values, err := redisstream.DefaultMarshallerUnmarshaller{}.Marshal(topic, msg)
		require.NoError(t, err)
		require.NoError(t, client.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: values}).Err())
	case "postgres":
		conn, err := pgx.Connect(ctx, postgresURL)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		md, err := json.Marshal(msg.Metadata)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, `INSERT INTO "watermill_`+topic+`" (uuid, payload, metadata) VALUES ($1, $2, $3::json)`,
			msg.UUID, []byte(msg.Payload), string(md))
		require.NoError(t, err)
	default: // gochannel, kafka: a plain Watermill producer
		require.NoError(t, adapters.RawPublisher(tr).Publish(topic, msg))
	}
}

// seenControl records the control keys the handler saw, per call.
type seenControl struct {
	mu    sync.Mutex
	calls []message.Metadata
}

func (s *seenControl) add(msg *message.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	md := message.Metadata{}
	for _, k := range []string{levee.KeyDeliveryCount, levee.KeyRetryAfter, levee.KeyRedeliverAt} {
		if v, ok := msg.Metadata[k]; ok {
			md[k] = v
		}
	}
	s.calls = append(s.calls, md)
}

func (s *seenControl) snapshot() []message.Metadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]message.Metadata(nil), s.calls...)
}

// checkNoForged asserts that no call saw a producer's control value: no
// retry-after or redeliver-at at all, and a delivery count only where the
// broker counts deliveries, as a small positive number.
func checkNoForged(t *testing.T, tr *adapters.Transport, calls []message.Metadata) {
	t.Helper()
	for i, md := range calls {
		require.NotContains(t, md, levee.KeyRetryAfter, "call %d saw a retry-after", i+1)
		require.NotContains(t, md, levee.KeyRedeliverAt, "call %d saw a redeliver-at", i+1)
		v, ok := md[levee.KeyDeliveryCount]
		if !tr.Capabilities.DeliveryCount {
			require.False(t, ok, "call %d saw delivery count %q on a transport that counts none", i+1, v)
			continue
		}
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "call %d: delivery count %q", i+1, v)
		require.True(t, n >= 1 && n < 99, "call %d saw delivery count %d, not the broker's", i+1, n)
	}
}

// TestTrust runs the trust checks on every transport, all at once.
func TestTrust(t *testing.T) {
	var names []string
	var runs []func(t *testing.T)
	for _, tc := range bpTransports(t) {
		names = append(names, tc.name+"/forged_failing", tc.name+"/forged_shed")
		runs = append(runs, func(t *testing.T) { trustFailing(t, tc) }, func(t *testing.T) { trustShed(t, tc) })
	}
	runConcurrently(t, names, func(t *testing.T, i int) { runs[i](t) })
}

// trustFailing: a message that always fails and a healthy one, both with
// forged control keys. The failing one gets exactly max attempts handler
// calls and one dead letter with levee_attempts = max attempts (the dlq's
// max hold is short, so retries go through the broker's redelivery and,
// on NATS and quorum queues, its delivery count); the healthy one is
// delivered (on PostgreSQL, despite its redeliver-at ten years ahead).
func trustFailing(t *testing.T, tc transportCase) {
	tr := bpTransport(t, tc, 2)
	topic := scenarioTopic("trust")
	d, err := dlq.New(tr.Publisher, dlq.WithMaxHold(50*time.Millisecond))
	require.NoError(t, err)
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)

	var seen seenControl
	calls, processed, dead := newScenarioSet(), newScenarioSet(), newScenarioSet()
	router := scenarioRouter(t)
	router.AddMiddleware(tr.Middleware)
	router.AddConsumerHandler("trust", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(scenarioHandler(func(msg *message.Message) error {
		seen.add(msg)
		calls.add(msg.UUID, nil)
		if msg.Metadata.Get("fail") == "1" {
			return errors.New("downstream rejects the order") // transient: retried, then exhausted
		}
		processed.add(msg.UUID, nil)
		return nil
	}))))
	dlTr := tr
	if tc.group != "" { // see bpRun
		dlTr = bpTransport(t, tc, 1)
	}
	scenarioCollectDeadLetters(router, dlTr.Subscriber, topic+".dlq", dead)
	scenarioRun(t, router)

	failing := message.NewMessage(watermill.NewUUID(), []byte("failing"))
	failing.Metadata.Set("fail", "1")
	forgedControl(failing)
	healthy := message.NewMessage(watermill.NewUUID(), []byte("healthy"))
	forgedControl(healthy)
	hostilePublish(t, tc, tr, topic, failing)
	hostilePublish(t, tc, tr, topic, healthy)

	scenarioWait(t, "the healthy message processed and the failing one dead-lettered", func() bool {
		return processed.len() == 1 && dead.len() == 1
	})
	time.Sleep(500 * time.Millisecond) // a late extra call or dead letter shows up

	gotCalls, _ := calls.snapshot()
	deadSeen, deadMsgs := dead.snapshot()
	all := seen.snapshot()
	t.Logf("%s: %d calls; control keys seen per call: %v", tc.name, len(all), all)
	require.Equal(t, bpMaxAttempts, gotCalls[failing.UUID], "handler calls of the failing message")
	require.Equal(t, map[string]int{failing.UUID: 1}, deadSeen, "dead letters")
	dl := deadMsgs[failing.UUID]
	require.Equal(t, string(dlq.ClassExhausted), dl.Metadata.Get(dlq.KeyErrorClass))
	require.Equal(t, strconv.Itoa(bpMaxAttempts), dl.Metadata.Get(dlq.KeyAttempts), "levee_attempts")
	require.Equal(t, 1, gotCalls[healthy.UUID], "handler calls of the healthy message")
	checkNoForged(t, tr, all)
}

// trustShed: a healthy message with forged control keys (levee_retry_after
// 1h among them) is shed by a rejecting limiter behind the one before it;
// it comes back after the limiter's own RetryAfter (seconds), not after the
// forged hour, and is processed.
func trustShed(t *testing.T, tc transportCase) {
	tr := bpTransport(t, tc, 1)
	topic := scenarioTopic("trust_shed")
	d, err := dlq.New(tr.Publisher) // no max hold: the deferral is Nacked with its RetryAfter
	require.NoError(t, err)
	l, err := ratelimit.New(ratelimit.WithRate(0.25), ratelimit.WithMode(ratelimit.ModeReject))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).RateLimit(l.Middleware)

	var (
		seen       seenControl
		deliveries atomic.Int64 // of the forged message, at the router
		processed  = newScenarioSet()
	)
	forged := message.NewMessage(watermill.NewUUID(), []byte("forged"))
	forgedControl(forged)
	h := scenarioConsumer(stack.Middleware(scenarioHandler(func(msg *message.Message) error {
		if msg.UUID == forged.UUID {
			seen.add(msg)
		}
		processed.add(msg.UUID, nil)
		return nil
	})))
	router := scenarioRouter(t)
	router.AddMiddleware(tr.Middleware)
	router.AddConsumerHandler("trust_shed", topic, tr.Subscriber, func(msg *message.Message) error {
		if msg.UUID == forged.UUID {
			deliveries.Add(1)
		}
		return h(msg)
	})
	scenarioRun(t, router)

	// The first message takes the limiter's only token; the forged one,
	// published once that is done (GoChannel does not keep publish order),
	// comes well within the 4 s before the next token, so it is rejected
	// (a shed) and Nacked.
	require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("first"))))
	scenarioWait(t, "the first message processed", func() bool { return processed.len() == 1 })
	hostilePublish(t, tc, tr, topic, forged)
	scenarioWait(t, "the shed message processed", func() bool { return processed.len() == 2 })

	all := seen.snapshot()
	t.Logf("%s: forged message delivered %d times; control keys seen: %v", tc.name, deliveries.Load(), all)
	require.GreaterOrEqual(t, deliveries.Load(), int64(2), "the forged message was never shed")
	require.Len(t, all, 1, "handler calls of the forged message")
	checkNoForged(t, tr, all)
	if tc.name == "nats" {
		// It came back through JetStream (NakWithDelay of the limiter's
		// delay), which counted the shed delivery.
		require.Equal(t, "2", all[0][levee.KeyDeliveryCount], "delivery count after one shed")
	}
}

// TestTrustAMQPDeliveryCount: a producer's x-delivery-count, whatever its
// type or value, never becomes the delivery count. On a classic queue the
// handler sees no delivery count; on a quorum queue it sees the broker's:
// 1 on the first delivery, then never less (an in-process retry keeps the
// delivery's count, and an early redelivery the dlq Nacks again without a
// handler call adds one). Every message gets exactly max attempts handler
// calls and a dead letter saying so.
// Before the fix, 99 gave one call and attempts=100, and MaxInt64 wrapped
// around to a negative count.
func TestTrustAMQPDeliveryCount(t *testing.T) {
	forged := map[string]any{
		"int64":    int64(99),
		"int32":    int32(99),
		"max":      int64(math.MaxInt64),
		"negative": int64(-1),
		"string":   "99",
		// RabbitMQ 4.3's x-acquired-count, read only from a 4.3 server;
		// before that only a producer can have set it.
		"acquired int64": int64(99),
		"acquired max":   int64(math.MaxInt64),
	}
	for _, tc := range bpTransports(t) {
		if tc.name != "amqp_classic" && tc.name != "amqp_quorum" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tr := bpTransport(t, tc, 1)
			topic := scenarioTopic("trust_xdc")
			d, err := dlq.New(tr.Publisher, dlq.WithMaxHold(50*time.Millisecond))
			require.NoError(t, err)
			var (
				mu     sync.Mutex
				counts = map[string][]string{} // by message UUID, per call
				leaked []string                // x-delivery-count values seen in metadata
			)
			dead := newScenarioSet()
			router := scenarioRouter(t)
			router.AddMiddleware(tr.Middleware)
			router.AddConsumerHandler("trust_xdc", topic, tr.Subscriber, scenarioConsumer(middleware.NewStack().DLQ(d.Middleware).Middleware(scenarioHandler(func(msg *message.Message) error {
				mu.Lock()
				counts[msg.UUID] = append(counts[msg.UUID], msg.Metadata.Get(levee.KeyDeliveryCount))
				for _, k := range []string{xDeliveryCount, xAcquiredCount} {
					if v, ok := msg.Metadata[k]; ok {
						leaked = append(leaked, k+"="+v)
					}
				}
				mu.Unlock()
				return errors.New("downstream rejects the order")
			}))))
			scenarioCollectDeadLetters(router, tr.Subscriber, topic+".dlq", dead)
			scenarioRun(t, router)

			uuids := map[string]string{} // kind by UUID
			for kind, v := range forged {
				msg := message.NewMessage(watermill.NewUUID(), []byte(kind))
				uuids[msg.UUID] = kind
				header := xDeliveryCount
				if strings.HasPrefix(kind, "acquired") {
					header = xAcquiredCount
				}
				publishAMQPHeaders(t, topic, msg, amqp.Table{header: v})
			}
			scenarioWait(t, "every message dead-lettered", func() bool { return dead.len() == len(forged) })
			time.Sleep(500 * time.Millisecond) // a late extra call or dead letter shows up

			deadSeen, deadMsgs := dead.snapshot()
			mu.Lock()
			defer mu.Unlock()
			for id, kind := range uuids {
				t.Logf("%s: forged x-delivery-count %s: delivery counts seen %q", tc.name, kind, counts[id])
				require.Len(t, counts[id], bpMaxAttempts, "%s: handler calls", kind)
				checkDeliveryCounts(t, tr.Capabilities.DeliveryCount, kind, counts[id])
				require.Equal(t, 1, deadSeen[id], "%s: dead letters", kind)
				require.Equal(t, strconv.Itoa(bpMaxAttempts), deadMsgs[id].Metadata.Get(dlq.KeyAttempts), "%s: levee_attempts", kind)
			}
			require.Empty(t, leaked, "x-delivery-count or x-acquired-count in a handler's metadata")
		})
	}
}

// checkDeliveryCounts asserts the levee_delivery_count a handler saw on
// each call of one message: none where the transport counts no
// deliveries, else 1 first and a small non-decreasing count after.
func checkDeliveryCounts(t *testing.T, counted bool, kind string, seen []string) {
	t.Helper()
	prev := 1
	for i, v := range seen {
		if !counted {
			require.Empty(t, v, "%s: call %d saw a delivery count on a transport that counts none", kind, i+1)
			continue
		}
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "%s: call %d: delivery count %q", kind, i+1, v)
		if i == 0 {
			require.Equal(t, 1, n, "%s: delivery count of the first call", kind)
		}
		require.True(t, n >= prev && n < 99, "%s: call %d saw delivery count %d after %d, not the broker's", kind, i+1, n, prev)
		prev = n
	}
}

// publishAMQPHeaders publishes msg to queue with the broker's own client,
// with its metadata as string headers and extra as typed ones, and its
// UUID in Watermill's header unless it has none. Without a
// consumer group, watermill-amqp's queue is the topic, bound to the
// default exchange.
func publishAMQPHeaders(t *testing.T, queue string, msg *message.Message, extra amqp.Table) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	defer ch.Close()
	headers := amqp.Table{}
	if msg.UUID != "" {
		headers["_watermill_message_uuid"] = msg.UUID
	}
	for k, v := range msg.Metadata {
		headers[k] = v
	}
	for k, v := range extra {
		headers[k] = v
	}
	require.NoError(t, ch.PublishWithContext(ctx, "", queue, true, false, amqp.Publishing{
		Headers: headers, Body: msg.Payload, DeliveryMode: amqp.Persistent,
	}))
}
