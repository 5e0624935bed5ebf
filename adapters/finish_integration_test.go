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
)

// finTransports are the transports that ack, at a shutdown, a message
// whose handler finishes within their grace.
var finTransports = map[string]bool{"amqp": true, "nats": true, "redis": true, "postgres": true, "kafka": true}

// TestCloseAcksWhatFinishes: a consumer shuts down (router Close, then
// the transport's) while its handlers are running normally, each
// finishing a second after the Close began (the router closes its
// subscriber at once). Their messages are acked, not handed to the
// group's other consumer and run again.
func TestCloseAcksWhatFinishes(t *testing.T) {
	var cases []transportCase
	for _, tc := range transportCases(t) {
		if finTransports[tc.name] {
			cases = append(cases, tc)
		}
	}
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) { finRun(t, cases[i]) })
}

func finRun(t *testing.T, tc transportCase) {
	const n = 2
	run := strings.ToLower(watermill.NewShortUUID())
	topic := "levee_fin_" + run
	group := ""
	if tc.group != "" {
		group = "fin-" + run
	}
	opts := []adapters.Option{adapters.WithConcurrency(n)}
	switch tc.name {
	case "nats", "redis", "postgres":
		opts = append(opts, adapters.WithAckDeadline(hbAckDeadline))
	case "kafka":
		opts = append(opts, adapters.WithKafkaPartitions(n))
	}
	first := newTransport(t, tc, group, opts...)
	var running, finished atomic.Int64
	router := scenarioRouter(t)
	router.AddMiddleware(first.Middleware)
	router.AddConsumerHandler("fin", topic, first.Subscriber, func(msg *message.Message) error {
		running.Add(1)
		time.Sleep(time.Second) // work that ignores the context, finishing after the Close began
		finished.Add(1)
		return nil
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(context.Background()) }()
	<-router.Running()
	for range n {
		require.NoError(t, first.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("fin"))))
	}
	scenarioWait(t, "handlers running", func() bool { return running.Load() == n })

	second := newTransport(t, tc, group, opts...)
	var mu sync.Mutex
	var again []string
	next := scenarioRouter(t)
	next.AddConsumerHandler("fin", topic, second.Subscriber, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		again = append(again, msg.UUID)
		return nil
	})
	scenarioRun(t, next)
	require.NoError(t, router.Close())
	<-done
	require.NoError(t, first.Close())
	require.EqualValues(t, n, finished.Load())
	time.Sleep(8 * time.Second) // longer than the Redis claim interval
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, again, "%s: messages whose handler finished were run again by the other consumer", tc.name)
}
