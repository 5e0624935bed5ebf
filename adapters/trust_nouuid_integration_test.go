//go:build integration

package adapters_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// TestTrustNoUUID: a producer that writes to the broker natively, without
// Watermill's UUID header (RabbitMQ, NATS) or with an empty one, sends
// poison messages. Each gets exactly max attempts handler calls and one
// dead letter saying so, as a message with a UUID does. The dlq's max
// hold is short, so retries go through the broker. Before, the attempt
// table did not track a message without a UUID: its count started again
// at every redelivery, so on RabbitMQ classic queues, Redis, PostgreSQL,
// Kafka and GoChannel it was redelivered at once, in a loop, and never
// dead-lettered (over 2,000 handler calls per message in 20 s); on NATS
// and quorum queues only the broker's delivery count was left, which
// does not count the retries made within one delivery (a jittered
// backoff shorter than the max hold): 6 to 9 handler calls.
func TestTrustNoUUID(t *testing.T) {
	const messages = 4
	cases := bpTransports(t)
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) {
		tc := cases[i]
		tr := bpTransport(t, tc, 2)
		topic := scenarioTopic("trust_nouuid")
		d, err := dlq.New(tr.Publisher, dlq.WithMaxHold(50*time.Millisecond))
		require.NoError(t, err)
		var (
			mu      sync.Mutex
			calls   = map[string]int{}      // by payload
			letters = map[string][]string{} // by payload: levee_attempts of each letter
		)
		router := scenarioRouter(t)
		router.AddMiddleware(tr.Middleware)
		stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)
		router.AddConsumerHandler("trust_nouuid", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(scenarioHandler(func(msg *message.Message) error {
			mu.Lock()
			calls[string(msg.Payload)]++
			mu.Unlock()
			return errors.New("downstream rejects the order") // transient: retried, then exhausted
		}))))
		dlTr := tr
		if tc.group != "" { // see bpRun
			dlTr = bpTransport(t, tc, 1)
		}
		router.AddConsumerHandler("dead_letters", topic+".dlq", dlTr.Subscriber, func(msg *message.Message) error {
			mu.Lock()
			letters[string(msg.Payload)] = append(letters[string(msg.Payload)], msg.Metadata.Get(dlq.KeyAttempts))
			mu.Unlock()
			return nil
		})
		scenarioRun(t, router)
		for j := range messages {
			hostilePublish(t, tc, tr, topic, message.NewMessage("", fmt.Appendf(nil, "order-%d", j)))
		}
		scenarioWait(t, "every message dead-lettered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(letters) == messages
		})
		time.Sleep(500 * time.Millisecond) // a late extra call or dead letter shows up

		mu.Lock()
		defer mu.Unlock()
		t.Logf("%s: handler calls %v, dead letters' attempts %v", tc.name, calls, letters)
		for j := range messages {
			p := fmt.Sprintf("order-%d", j)
			require.Equal(t, bpMaxAttempts, calls[p], "handler calls of %s", p)
			require.Equal(t, []string{strconv.Itoa(bpMaxAttempts)}, letters[p], "dead letters of %s", p)
		}
	})
}
