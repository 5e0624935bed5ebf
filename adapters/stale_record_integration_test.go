//go:build integration

package adapters_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq"
)

// TestDuplicateDeferredAfterAck reproduces on JetStream what left a dlq
// attempt-table entry behind in TestBackpressure/nats/shed under load: a
// message held past AckWait is delivered again while the first copy runs;
// the first copy succeeds and is acked, then the duplicate is deferred. Its
// Nak reaches a message the server has acked, so no copy ever comes back
// to settle the duplicate's entry: the entry must expire
// (dlq.WithAttemptTableTTL). Before the expiry it stayed until 10,000
// newer entries evicted it.
func TestDuplicateDeferredAfterAck(t *testing.T) {
	var nats transportCase
	for _, tc := range transportCases(t) {
		if tc.name == "nats" {
			nats = tc
		}
	}
	require.Equal(t, "nats", nats.name)
	const (
		ackWait = 2 * time.Second
		ttl     = 3 * time.Second
		after   = time.Second // the duplicate's RetryAfter
	)
	tr := newTransport(t, nats, "dup-"+watermill.NewShortUUID(), adapters.WithAckDeadline(ackWait), adapters.WithConcurrency(2))
	d, err := dlq.New(tr.Publisher, dlq.WithAttemptTableTTL(ttl))
	require.NoError(t, err)

	var (
		mu         sync.Mutex
		deliveries int
		copies     sync.Map // *message.Message -> its delivery number
	)
	second, firstDone := make(chan struct{}), make(chan struct{})
	h := d.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		n, _ := copies.Load(msg)
		switch n {
		case 1: // held until the server has delivered it again
			select {
			case <-second:
			case <-time.After(3 * ackWait):
				return nil, errors.New("no redelivery while held past AckWait")
			}
			return nil, nil
		case 2: // the duplicate: deferred once the first copy is acked
			close(second)
			<-firstDone
			time.Sleep(500 * time.Millisecond) // the router acks after the handler returns
			return nil, levee.Defer(after, errors.New("shed"))
		}
		return nil, nil
	})
	topic := scenarioTopic("dup")
	router := scenarioRouter(t)
	router.AddMiddleware(tr.Middleware)
	router.AddConsumerHandler("dup", topic, tr.Subscriber, func(msg *message.Message) error {
		mu.Lock()
		deliveries++
		n := deliveries
		mu.Unlock()
		copies.Store(msg, n)
		_, err := h(msg)
		if n == 1 {
			close(firstDone)
		}
		return err
	})
	scenarioRun(t, router)
	require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("order"))))

	// The duplicate's deferral is recorded; the server does not deliver
	// the acked message again, so the entry is stale.
	deferred := time.Now().Add(3*ackWait + time.Second)
	for d.Pending() == 0 && time.Now().Before(deferred) {
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, 1, d.Pending(), "the duplicate's deferral was not recorded")
	at := time.Now()
	time.Sleep(after + time.Second)
	mu.Lock()
	got := deliveries
	mu.Unlock()
	require.Equal(t, 2, got, "deliveries: the server delivered the acked message again")
	// The entry expires ttl after its due time (RetryAfter after the
	// Nack).
	for d.Pending() > 0 && time.Since(at) < after+ttl+5*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	require.Zero(t, d.Pending(), "the stale entry did not expire")
	require.GreaterOrEqual(t, time.Since(at), after+ttl-100*time.Millisecond, "the entry expired before its due time and ttl")
}
