//go:build integration

package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestDelayedRequeueAtAckDeadline: when a row's ack deadline passes,
// watermill-sql gives the row up and commits its transaction, and the
// handler, whose context ends at the same moment, Nacks with a delay (a
// retry the dlq asks for later): the delayed requeue must not use the
// transaction while it commits (it did: the race detector saw the
// requeue's insert and the commit on one connection at once). Every
// message comes back, from the delayed copy or as the row given up.
func TestDelayedRequeueAtAckDeadline(t *testing.T) {
	pool := pgPool(t)
	tr, err := postgres.New(context.Background(), postgres.Config{URL: brokertest.PostgresURL(), PollInterval: 20 * time.Millisecond},
		transport.Settings{Concurrency: 8, AckDeadline: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	topic := "deadline_" + strings.ToLower(watermill.NewShortUUID())
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS "watermill_`+topic+`"`) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)

	const n = 16
	for range n {
		require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	deadline := time.After(60 * time.Second)
	for {
		mu.Lock()
		again := 0
		for _, c := range seen {
			if c >= 2 {
				again++
			}
		}
		mu.Unlock()
		if again == n {
			return
		}
		select {
		case msg := <-ch:
			mu.Lock()
			seen[msg.UUID]++
			first := seen[msg.UUID] == 1
			mu.Unlock()
			if !first {
				msg.Ack()
				continue
			}
			go func() {
				// Held past the ack deadline, then Nacked with a delay as
				// the transport's middleware writes it.
				<-msg.Context().Done()
				msg.Metadata.Set(levee.KeyRetryAfter, "100ms")
				msg.Nack()
			}()
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("messages delivered again: %d of %d (%v)", len(seen), n, seen)
		}
	}
}
