//go:build integration

package adapters_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// rbWithin bounds the rebalance: well below sarama's 60 s rebalance
// timeout, after which the coordinator drops a member that never rejoined.
const rbWithin = 20 * time.Second

// TestKafkaRebalanceReleasesHeldMessages: a consumer holds messages in the
// canonical stack (its breaker open, no max hold: Kafka has no ack
// deadline) when a second consumer joins the group. The partitions taken
// from the first must be released at once, not when the breaker closes:
// their held messages are handed back (not acked, not committed), the
// rebalance completes, and the second consumer handles them. Every
// message is then handled at least once and the first consumer holds no
// message. Before the fix the rebalance waited for the breaker: the second
// consumer got nothing (not in 100 s).
func TestKafkaRebalanceReleasesHeldMessages(t *testing.T) {
	tc := transportCases(t)[2]
	require.Equal(t, "kafka", tc.name)
	const parts, total = 4, 16
	group := "rebalance-" + watermill.NewShortUUID()
	topic := "levee_rebalance_" + strings.ToLower(watermill.NewShortUUID())
	trA := newTransport(t, tc, group, adapters.WithConcurrency(parts), adapters.WithKafkaPartitions(parts))

	var mu sync.Mutex
	handledBy := map[string][]string{} // message UUID -> consumers that handled it
	handled := func(who string) message.NoPublishHandlerFunc {
		return func(msg *message.Message) error {
			mu.Lock()
			defer mu.Unlock()
			handledBy[msg.UUID] = append(handledBy[msg.UUID], who)
			return nil
		}
	}
	count := func() (all, byB int) {
		mu.Lock()
		defer mu.Unlock()
		for _, who := range handledBy {
			all++
			if strings.Contains(strings.Join(who, ","), "b") {
				byB++
			}
		}
		return all, byB
	}

	d, err := dlq.New(trA.Publisher, dlq.WithTopic(topic+".dlq"))
	require.NoError(t, err)
	dd, err := dedup.New()
	require.NoError(t, err)
	b, err := breaker.New(breaker.WithName("rb"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	s, err := priority.NewScheduler(priority.WithSlots(2))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	l, err := ratelimit.New(ratelimit.WithRate(1000), ratelimit.WithBurst(10))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	to, err := middleware.NewTimeout(5 * time.Second)
	require.NoError(t, err)
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Dedup(dd.Middleware).
		Breaker(b.Middleware).Priority(s.Middleware).RateLimit(l.Middleware).Timeout(to.Middleware)
	b.ForceOpen() // the downstream is down: every message waits in the breaker

	routerA := scenarioRouter(t)
	routerA.AddMiddleware(trA.Middleware)
	hA := scenarioConsumer(stack.Middleware(scenarioHandler(handled("a"))))
	var held atomic.Int64 // messages in A's stack
	routerA.AddConsumerHandler("a", topic, trA.Subscriber, func(msg *message.Message) error {
		held.Add(1)
		defer held.Add(-1)
		return hA(msg)
	})
	scenarioRun(t, routerA)

	for range total {
		require.NoError(t, trA.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))))
	}
	// One message per partition waits in A's open breaker.
	scenarioWait(t, "A holds a message of every partition", func() bool { return held.Load() == parts })

	trB := newTransport(t, tc, group, adapters.WithConcurrency(parts), adapters.WithKafkaPartitions(parts))
	routerB := scenarioRouter(t)
	routerB.AddConsumerHandler("b", topic, trB.Subscriber, handled("b"))
	joined := time.Now()
	scenarioRun(t, routerB)

	deadline := time.Now().Add(rbWithin)
	for _, byB := count(); byB == 0; _, byB = count() {
		if time.Now().After(deadline) {
			t.Fatalf("the second consumer handled nothing %v after it joined: the rebalance waits for the messages A holds (A holds %d)",
				rbWithin, held.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the second consumer handled its first message %v after it joined", time.Since(joined).Round(time.Millisecond))

	b.ClearForce() // the downstream is back: A handles what it kept
	scenarioWait(t, "every message handled", func() bool { all, _ := count(); return all == total })
	scenarioWait(t, "A holds nothing", func() bool { return held.Load() == 0 })
	_, byB := count()
	require.Positive(t, byB, "messages handled by the second consumer")
	// A's dlq keeps a record (no attempt) of each message the rebalance
	// took from it, as of any delivery cut off by a shutdown; bounded.
	t.Logf("handled by the second consumer: %d of %d; A's dlq table: %d records", byB, total, d.Pending())
}

// TestKafkaRebalanceWhileHeld: the first consumer holds a message of every
// partition in each place of the stack at once (sdPlaces: an open breaker,
// a priority queue, a rate-limit wait, a dlq backoff, an open batch; dedup
// claims on a shared store) when a second consumer joins the group. The
// second gets half of each topic's partitions and must handle messages of
// every place while the first still holds the rest; when the first then
// closes, every message is handled.
func TestKafkaRebalanceWhileHeld(t *testing.T) {
	tc := transportCases(t)[2]
	require.Equal(t, "kafka", tc.name)
	client := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = client.Close() })
	const perTopic = 8 // two per partition: each consumer's half has some
	e, router, done, sent := sdStart(t, tc, client, perTopic)
	joined := time.Now()
	e.second(tc)
	for _, p := range sdPlaces(perTopic) {
		for e.count("second:"+p.name) == 0 {
			if time.Since(joined) > rbWithin {
				t.Fatalf("%s: the second consumer handled none of its messages %v after it joined: the rebalance waits for the messages the first holds",
					p.name, rbWithin)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("the second consumer handled messages of every place %v after it joined", time.Since(joined).Round(time.Millisecond))
	e.closeFirst(tc, router, done, sent)
	e.waitHandled(tc, sent)
}
