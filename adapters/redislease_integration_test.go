//go:build integration

package adapters_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
)

// TestRedisHeldMessageNotClaimed: a message its consumer keeps Nacking
// (watermill-redisstream re-sends it in process, so Redis sees it pending
// and idle all along) for three times the ack deadline is not claimed by
// another member of the group while the consumer is alive: it is never in
// two handlers at once. Before the lease renewal, the second member claimed
// it after the ack deadline and both ran it.
func TestRedisHeldMessageNotClaimed(t *testing.T) {
	const ackDeadline = time.Second
	tr := newTransport(t, transportCase{opts: func() []adapters.Option { return []adapters.Option{adapters.WithRedis(redisAddr)} }},
		"lease-"+watermill.NewShortUUID(), adapters.WithConcurrency(2), adapters.WithAckDeadline(ackDeadline))
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
