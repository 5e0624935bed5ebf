//go:build integration

package adapters_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/middleware"
)

// hbAckDeadline is the ack deadline of the transports that have one: a
// held message that came back only after it would miss hbWithin.
const hbAckDeadline = 60 * time.Second

// hbWithin bounds how long after the first consumer's close a live
// consumer of its group gets the messages the first held: a third of
// hbAckDeadline.
const hbWithin = hbAckDeadline / 3

// TestCloseHandsHeldMessagesToLiveConsumer: a consumer whose breaker is
// open (no max hold) holds every message it was given when it shuts down
// (router Close, then the transport's, as adapters/service does); a
// second consumer of the same group, already running, gets every held
// message well before the ack deadline (60 s; Kafka has none), none of
// them was acked or handled by the first, and the second handles each
// exactly once in the window. On every durable transport.
func TestCloseHandsHeldMessagesToLiveConsumer(t *testing.T) {
	var cases []transportCase
	for _, tc := range transportCases(t) {
		if tc.name != "gochannel" {
			cases = append(cases, tc)
		}
	}
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) { hbRun(t, cases[i]) })
}

func hbRun(t *testing.T, tc transportCase) {
	const n = 2 // the first consumer's concurrency: it holds one per slot
	run := strings.ToLower(watermill.NewShortUUID())
	topic := "levee_hb_" + run
	group := ""
	if tc.group != "" {
		group = "hb-" + run
	}
	opts := []adapters.Option{adapters.WithConcurrency(n)}
	switch tc.name {
	case "nats", "redis", "postgres":
		opts = append(opts, adapters.WithAckDeadline(hbAckDeadline))
	case "kafka":
		opts = append(opts, adapters.WithKafkaPartitions(n))
	}
	first := newTransport(t, tc, group, opts...)
	b, err := breaker.New(breaker.WithName("hb"))
	require.NoError(t, err)
	defer b.Close()
	b.ForceOpen()

	var held, firstHandled, firstAcked atomic.Int64
	router := scenarioRouter(t)
	router.AddMiddleware(first.Middleware)
	h := middleware.NewStack().Breaker(b.Middleware).Middleware(func(*message.Message) ([]*message.Message, error) {
		firstHandled.Add(1)
		return nil, nil
	})
	router.AddConsumerHandler("hb", topic, first.Subscriber, func(msg *message.Message) error {
		held.Add(1)
		defer held.Add(-1)
		_, err := h(msg)
		if err == nil {
			firstAcked.Add(1)
		}
		return err
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(context.Background()) }()
	<-router.Running()
	sent := map[string]bool{}
	for range n {
		m := message.NewMessage(watermill.NewUUID(), []byte("hb"))
		sent[m.UUID] = true
		require.NoError(t, first.Publisher.Publish(topic, m))
	}
	scenarioWait(t, "messages held in the open breaker", func() bool { return held.Load() == n })

	second := newTransport(t, tc, group, opts...)
	var mu sync.Mutex
	got := map[string]int{}
	next := scenarioRouter(t)
	next.AddMiddleware(second.Middleware)
	next.AddConsumerHandler("hb", topic, second.Subscriber, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got[msg.UUID]++
		return nil
	})
	scenarioRun(t, next)

	start := time.Now()
	require.NoError(t, router.Close())
	<-done
	require.NoError(t, first.Close())
	t.Logf("%s: first consumer closed in %v", tc.name, time.Since(start).Round(time.Millisecond))
	require.Zero(t, firstHandled.Load(), "handled by the first consumer with its breaker open")
	require.Zero(t, firstAcked.Load(), "acked by the first consumer")

	deadline := start.Add(hbWithin)
	for {
		mu.Lock()
		all := len(got) == len(sent)
		mu.Unlock()
		if all {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: the live consumer got %d of %d held messages within %v of the close (ack deadline %v)", tc.name, len(got), len(sent), hbWithin, hbAckDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s: every held message reached the live consumer %v after the close began", tc.name, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // a second delivery would show here
	mu.Lock()
	defer mu.Unlock()
	for id, c := range got {
		require.True(t, sent[id], "unexpected message %s", id)
		require.Equal(t, 1, c, "deliveries of %s to the live consumer", id)
	}
}
