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
	"github.com/levee-dev/levee/ratelimit"
)

// TestNATSRejectModeBacklog: a backlog of 300 messages of one key behind
// a per-key limit of 20/s in reject mode, over NATS (delayed redelivery:
// the transport Naks with the rejection's RetryAfter). Every rejected
// message was told the key's next token, so the backlog came back all
// together and all but one were rejected again: about 44,000 rejections
// for 300 messages (the audit: 43,679 for 370). The rejections are now
// spread over the tokens to come: each message comes back about once,
// and the backlog still drains at the limit (a redelivery that comes
// back a little late still takes the token it was told).
func TestNATSRejectModeBacklog(t *testing.T) {
	const n, rate = 300, 20.0
	tr := newTransport(t, transportCase{name: "nats", opts: func() []adapters.Option {
		return []adapters.Option{adapters.WithNATS(natsURL), adapters.WithAckDeadline(5 * time.Second),
			adapters.WithConcurrency(32)}
	}}, "herd-"+watermill.NewShortUUID())
	topic := scenarioTopic("reject_herd")
	l, err := ratelimit.New(ratelimit.WithMode(ratelimit.ModeReject), ratelimit.WithKeyMetadata("tenant"),
		ratelimit.WithPerKey(rate, 1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var admitted, rejected atomic.Int64
	var last atomic.Int64 // unix ns of the last admission
	h := l.Middleware(func(*message.Message) ([]*message.Message, error) {
		admitted.Add(1)
		last.Store(time.Now().UnixNano())
		return nil, nil
	})
	router := scenarioRouter(t)
	router.AddMiddleware(tr.Middleware)
	router.AddConsumerHandler("reject_herd", topic, tr.Subscriber, func(msg *message.Message) error {
		_, err := h(msg)
		if errors.Is(err, ratelimit.ErrLimited) {
			rejected.Add(1)
		}
		return err
	})
	scenarioRun(t, router)
	// publish the backlog before the first token is taken: start at once
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("x"))
		msgs[i].Metadata.Set("tenant", "t1")
		msgs[i].SetContext(context.Background())
	}
	start := time.Now()
	require.NoError(t, tr.Publisher.Publish(topic, msgs...))
	deadline := start.Add(n/rate*time.Second + 30*time.Second)
	for admitted.Load() < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Unix(0, last.Load()).Sub(start)
	t.Logf("%d of %d admitted, %d rejections, the last admitted after %v (at the limit: %v)",
		admitted.Load(), n, rejected.Load(), took.Round(time.Millisecond), time.Duration((n-1)/rate*float64(time.Second)))
	require.EqualValues(t, n, admitted.Load(), "not every message was admitted")
	require.LessOrEqual(t, rejected.Load(), int64(3*n), "the backlog was rejected over and over")
	// at the limit, 14.95 s; late redeliveries restarting the schedule made it 22.8 s
	require.Less(t, took, time.Duration(1.25*n/rate*float64(time.Second)), "the backlog drained below the limit")
}
