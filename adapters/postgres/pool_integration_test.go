//go:build integration

package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestPublishWhileEveryConnectionHoldsARow: a service whose topics times
// concurrency reach max_conns has a row (and its connection) in flight on
// every connection, and each handler publishes before it acks (a result,
// a dead letter). Before, the publisher drew from the same pool, so every
// publish waited for a connection only an ack could free: the service
// stalled until the ack deadline gave the rows up (a 40-handler service
// dead-lettering 320 messages took 3.5 minutes). The publisher now has
// connections of its own within max_conns.
func TestPublishWhileEveryConnectionHoldsARow(t *testing.T) {
	brokertest.SkipIfDown(t, "127.0.0.1:5432")
	const topics = 3
	tr, err := postgres.New(context.Background(), postgres.Config{URL: brokertest.PostgresURL(),
		PollInterval: 10 * time.Millisecond, MaxConns: topics, DeleteOnAck: true},
		transport.Settings{Concurrency: 2, AckDeadline: 5 * time.Minute})
	require.NoError(t, err)
	prefix := "pool_" + strings.ToLower(watermill.NewShortUUID()) + "_"
	names := []string{prefix + "out"}
	for i := range topics {
		names = append(names, fmt.Sprintf("%sin%d", prefix, i))
	}
	pool := pgPool(t)
	// The tables are dropped once the transport is closed: its pollers
	// hold locks on them until then.
	t.Cleanup(func() {
		_ = tr.Close()
		for _, name := range names {
			_, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS "watermill_`+name+`"`)
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	published := make(chan error, 2*topics)
	for _, topic := range names[1:] {
		ch, err := tr.Subscriber.Subscribe(ctx, topic)
		require.NoError(t, err)
		go func() {
			for m := range ch {
				published <- tr.Publisher.Publish(prefix+"out", message.NewMessage(watermill.NewUUID(), m.Payload))
				m.Ack()
			}
		}()
	}
	// Two rows per topic: every poller gets a row while the others hold theirs.
	for _, topic := range names[1:] {
		for range 2 {
			require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(topic))))
		}
	}
	for i := range 2 * topics {
		select {
		case err := <-published:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatalf("%d of %d handlers' publishes done in 15s: the publisher waits for a connection the rows in flight hold", i, 2*topics)
		}
	}
}
