//go:build integration

package adapters_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
)

// redisCase is the Redis transport with the ack deadline left to each test.
var redisCase = transportCase{opts: func() []adapters.Option { return []adapters.Option{adapters.WithRedis(redisAddr)} }}

// TestRedisHeldMessageNotClaimed: a message its consumer keeps Nacking
// (watermill-redisstream re-sends it in process, so Redis sees it pending
// and idle all along) for three times the ack deadline is not claimed by
// another member of the group while the consumer is alive: it is never in
// two handlers at once. Before the lease renewal, the second member claimed
// it after the ack deadline and both ran it.
func TestRedisHeldMessageNotClaimed(t *testing.T) {
	const ackDeadline = time.Second
	tr := newTransport(t, redisCase, "lease-"+watermill.NewShortUUID(), adapters.WithConcurrency(2), adapters.WithAckDeadline(ackDeadline))
	topic := scenarioTopic("lease")

	var (
		active, maxActive, deliveries atomic.Int64
		first                         atomic.Int64 // unix nanos of the first delivery
		acked                         atomic.Bool
	)
	router := scenarioRouter(t)
	router.AddConsumerHandler("lease", topic, tr.Subscriber, func(msg *message.Message) error {
		n := active.Add(1)
		defer active.Add(-1)
		for m := maxActive.Load(); n > m && !maxActive.CompareAndSwap(m, n); m = maxActive.Load() {
		}
		deliveries.Add(1)
		first.CompareAndSwap(0, time.Now().UnixNano())
		time.Sleep(100 * time.Millisecond)
		if time.Since(time.Unix(0, first.Load())) < 3*ackDeadline {
			return errors.New("not yet") // Nacked: re-sent in process
		}
		acked.Store(true)
		return nil
	})
	scenarioRun(t, router)
	require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("held"))))
	scenarioWait(t, "the held message acked", acked.Load)
	// A claim by the other member would show up within an ack deadline.
	time.Sleep(ackDeadline + ackDeadline/2)
	t.Logf("%d deliveries, at most %d at once", deliveries.Load(), maxActive.Load())
	require.Equal(t, int64(1), maxActive.Load(), "the message was in two handlers at once")
	require.Zero(t, active.Load())
}

// TestRedisBusyMemberDoesNotReadAhead: a member whose handler holds a
// message fetches no other entry, so a message published meanwhile goes to
// an idle member at once. watermill-redisstream's member read up to two
// entries ahead while busy; they were pending for it and its lease renewal
// kept them from an idle member, so they waited as long as the held message
// (here, for ever) while the idle member got nothing.
func TestRedisBusyMemberDoesNotReadAhead(t *testing.T) {
	const ackDeadline = time.Second
	group := "ahead-" + watermill.NewShortUUID()
	topic := scenarioTopic("ahead")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	subscribe := func() (*adapters.Transport, <-chan *message.Message) {
		tr := newTransport(t, redisCase, group, adapters.WithConcurrency(1), adapters.WithAckDeadline(ackDeadline))
		ch, err := tr.Subscriber.Subscribe(ctx, topic)
		require.NoError(t, err)
		return tr, ch
	}
	receive := func(ch <-chan *message.Message, within time.Duration) *message.Message {
		t.Helper()
		select {
		case m := <-ch:
			return m
		case <-time.After(within):
			t.Fatalf("no message within %s", within)
			return nil
		}
	}
	busy, held := subscribe()
	first, second := message.NewMessage(watermill.NewUUID(), []byte("held")), message.NewMessage(watermill.NewUUID(), []byte("next"))
	require.NoError(t, busy.Publisher.Publish(topic, first))
	got := receive(held, scenarioTimeout)
	defer got.Ack()
	require.Equal(t, first.UUID, got.UUID)
	require.NoError(t, busy.Publisher.Publish(topic, second))
	// The busy member polls the stream every 100 ms: time enough to read
	// ahead, were it to.
	time.Sleep(ackDeadline / 2)

	_, idle := subscribe()
	// Without read-ahead the idle member reads it at once; a claim from the
	// busy member would come after the ack deadline at the earliest.
	m := receive(idle, 3*ackDeadline)
	require.Equal(t, second.UUID, m.UUID, "the idle member's message")
	m.Ack()
}
