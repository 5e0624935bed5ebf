//go:build integration

package postgres_test

import (
	"context"
	"runtime"
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

// TestShutdownEndsHeldMessagesTogether: when a subscription ends (its
// router closes) or the subscriber closes, the contexts of the messages
// its handlers hold, in every concurrency slot, end together. Before, each
// slot's relay ended its own message's context as it woke, so a handler
// whose context had ended could give its priority slot to a held message
// whose context was still live, and that message's handler ran during the
// shutdown (TestShutdownHandBacksAreNotFailures/postgres: a second
// levee.priority.wait.duration). Each trial holds two messages in two
// slots and looks at the second's context the moment the first's ends.
//
// "Together" means in one pass that no goroutine it wakes runs before it
// ends: the test runs with one P (GOMAXPROCS 1), so that what the pass
// wakes runs after it. With more Ps a woken goroutine can be stolen by an
// idle one between two cancels of the pass, as between two children of a
// parent context on the other transports: a window of a cancel call, not
// of a relay's wake-up. Without the fix 13 of 48 trials failed with one P
// (and 44 of 48 with two).
func TestShutdownEndsHeldMessagesTogether(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	pool := pgPool(t)
	topic := "stop_" + strings.ToLower(watermill.NewShortUUID())
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS "watermill_`+topic+`"`) })
	newTransport := func() *transport.Parts {
		tr, err := postgres.New(context.Background(), postgres.Config{URL: brokertest.PostgresURL(),
			PollInterval: 10 * time.Millisecond}, transport.Settings{Concurrency: 2})
		require.NoError(t, err)
		return tr
	}
	seed := newTransport()
	for range 2 {
		require.NoError(t, seed.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("held"))))
	}
	require.NoError(t, seed.Close())

	for _, how := range []string{"subscription ends", "subscriber closes"} {
		t.Run(how, func(t *testing.T) {
			tr := newTransport()
			defer func() { _ = tr.Close() }()
			for trial := range 16 {
				if how == "subscriber closes" && trial > 0 {
					tr = newTransport()
				}
				ctx, cancel := context.WithCancel(context.Background())
				ch, err := tr.Subscriber.Subscribe(ctx, topic)
				require.NoError(t, err)
				var held [2]*message.Message
				for i := range held {
					select {
					case held[i] = <-ch:
					case <-time.After(30 * time.Second):
						t.Fatalf("trial %d: message %d not delivered in 30 s", trial, i)
					}
				}
				live := make(chan bool, 1)
				go func() {
					<-held[0].Context().Done()
					live <- held[1].Context().Err() == nil
					held[0].Nack()
					held[1].Nack()
				}()
				closed := make(chan error, 1)
				if how == "subscription ends" {
					cancel()
				} else {
					go func() { closed <- tr.Close() }()
				}
				if <-live {
					t.Errorf("trial %d: the first held message's context ended while the second's was still live", trial)
				}
				if how == "subscriber closes" {
					require.NoError(t, <-closed)
				}
				cancel()
				for range ch { // the subscription's end, once both are Nacked
				}
			}
		})
	}
}
