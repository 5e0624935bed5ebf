//go:build integration

package adapters_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq"
)

func pgPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), postgresURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// dbNowMs is the database's clock in Unix milliseconds.
func dbNowMs(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var ms int64
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT floor(extract(epoch from clock_timestamp()) * 1000)::bigint`).Scan(&ms))
	return ms
}

// TestPostgresDelayedRequeue checks PostgreSQL's native delayed
// redelivery: a message Nacked with levee_retry_after 1.5s is requeued by
// the database (its row acked, a delayed row inserted, in one
// transaction), the consumer is free meanwhile (concurrency 1: a message
// published after the Nack is handled during the delay), and the message
// comes back, not before the delay by either clock.
func TestPostgresDelayedRequeue(t *testing.T) {
	const delay = 1500 * time.Millisecond
	pool := pgPool(t)
	tr, err := adapters.New(context.Background(), adapters.WithPostgres(postgresURL),
		adapters.WithPostgresPollInterval(20*time.Millisecond), adapters.WithConcurrency(1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	require.True(t, tr.Capabilities.NativeDelay)

	topic := "delay_" + strings.ToLower(watermill.NewShortUUID())
	table := `"watermill_` + topic + `"`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	delayed := message.NewMessage(watermill.NewUUID(), []byte("delayed"))
	delayed.Metadata.Set("k", "v")
	require.NoError(t, tr.Publisher.Publish(topic, delayed))

	receive := func(what string) *message.Message {
		t.Helper()
		select {
		case m := <-ch:
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: nothing delivered in 30s", what)
			return nil
		}
	}
	first := receive("first delivery")
	require.Equal(t, delayed.UUID, first.UUID)
	handler := tr.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, retryAfterErr{d: delay}
	})
	_, herr := handler(first)
	require.Error(t, herr)
	require.Equal(t, delay.String(), first.Metadata.Get(adapters.MetadataRetryAfter))
	dbNacked := dbNowMs(t, pool)
	nacked := time.Now()
	first.Nack()

	// The consumer is not held: with concurrency 1 a message published
	// after the Nack is delivered before the delayed one.
	other := message.NewMessage(watermill.NewUUID(), []byte("other"))
	require.NoError(t, tr.Publisher.Publish(topic, other))
	got := receive("message published after the Nack")
	require.Equal(t, other.UUID, got.UUID, "the delayed message came back before the one published after it")
	require.Less(t, time.Since(nacked), delay, "the consumer was held during the delay")
	got.Ack()

	// In the table: the original row acked, one unacked copy with its
	// redelivery time (the database's clock) at least the delay ahead.
	var redeliverAt int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		var acked bool
		var at *string
		err := pool.QueryRow(context.Background(),
			`SELECT acked, metadata->>'`+adapters.MetadataRedeliverAt+`' FROM `+table+` WHERE uuid = $1 ORDER BY "offset" LIMIT 1`,
			delayed.UUID).Scan(&acked, &at)
		require.NoError(t, err)
		var copies int
		require.NoError(t, pool.QueryRow(context.Background(),
			`SELECT count(*) FROM `+table+` WHERE uuid = $1 AND NOT acked AND metadata->>'`+adapters.MetadataRedeliverAt+`' IS NOT NULL`,
			delayed.UUID).Scan(&copies))
		if acked && copies == 1 {
			require.NoError(t, pool.QueryRow(context.Background(),
				`SELECT (metadata->>'`+adapters.MetadataRedeliverAt+`')::bigint FROM `+table+` WHERE uuid = $1 AND NOT acked`,
				delayed.UUID).Scan(&redeliverAt))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("original row acked %v, delayed copies %d: want acked and 1", acked, copies)
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.GreaterOrEqual(t, redeliverAt, dbNacked+delay.Milliseconds(), "levee_redeliver_at is less than the delay after the Nack")

	second := receive("redelivery")
	dbReceived := dbNowMs(t, pool)
	waited := time.Since(nacked)
	t.Logf("redelivered %s after the Nack (database clock: %d ms; due %d ms after it)", waited.Round(time.Millisecond), dbReceived-dbNacked, redeliverAt-dbNacked)
	require.Equal(t, delayed.UUID, second.UUID)
	require.Equal(t, "delayed", string(second.Payload))
	require.Equal(t, "v", second.Metadata.Get("k"))
	// The row carries levee_redeliver_at (checked above); the handler never
	// sees it: FanIn strips control keys at ingress (the trust boundary).
	require.Empty(t, second.Metadata.Get(adapters.MetadataRedeliverAt), "levee_redeliver_at reached the handler")
	require.GreaterOrEqual(t, waited, delay, "redelivered before the delay (process clock)")
	require.GreaterOrEqual(t, dbReceived, redeliverAt, "redelivered before levee_redeliver_at (database clock)")
	second.Ack()

	// Every row ends acked: nothing left to deliver, nothing lost.
	deadline = time.Now().Add(10 * time.Second)
	for {
		var unacked int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE NOT acked`).Scan(&unacked))
		if unacked == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still unacked after the redelivery was acked", unacked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPostgresRedeliverAtGarbage checks that a levee_redeliver_at written
// by something else (not a count of milliseconds) neither breaks the poll
// nor holds the row back: it is delivered at once.
func TestPostgresRedeliverAtGarbage(t *testing.T) {
	tr, err := adapters.New(context.Background(), adapters.WithPostgres(postgresURL),
		adapters.WithPostgresPollInterval(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	topic := "delay_garbage_" + strings.ToLower(watermill.NewShortUUID())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	var uuids []string
	for _, v := range []string{"soon", "-5", "99999999999999999999", "1e3", ""} {
		m := message.NewMessage(watermill.NewUUID(), []byte(v))
		m.Metadata.Set(adapters.MetadataRedeliverAt, v)
		uuids = append(uuids, m.UUID)
		require.NoError(t, tr.Publisher.Publish(topic, m))
	}
	for range uuids {
		select {
		case m := <-ch:
			require.Contains(t, uuids, m.UUID)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatal("a row with a garbage levee_redeliver_at was not delivered")
		}
	}
}

// TestDLQRetryLaterNativeDelay runs the dlq retry path on the transports
// with native delay: the retry delay (1.5s) exceeds max_hold (100ms), so
// the dlq Nacks with a RetryLaterError instead of holding the message,
// (*Transport).Middleware records the delay, and the transport redelivers
// after it: the message is delivered exactly twice (no early redelivery),
// the handler's second call comes no sooner than the delay.
func TestDLQRetryLaterNativeDelay(t *testing.T) {
	for _, tc := range transportCases(t) {
		if tc.name != "nats" && tc.name != "postgres" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			const delay = 1500 * time.Millisecond
			group := tc.group
			if group != "" {
				group = "retrylater-" + watermill.NewShortUUID()
			}
			tr := newTransport(t, tc, group, adapters.WithConcurrency(2))
			require.True(t, tr.Capabilities.NativeDelay)
			topic := "retrylater_" + strings.ToLower(watermill.NewShortUUID())
			dl, err := dlq.New(tr.Publisher,
				dlq.WithBackoff(dlq.Backoff{Initial: delay, Max: delay, Multiplier: 1, MaxAttempts: 3}),
				dlq.WithJitter(func() float64 { return 1 }),
				dlq.WithMaxHold(100*time.Millisecond))
			require.NoError(t, err)

			var (
				mu         sync.Mutex
				calls      []time.Time
				deliveries int
			)
			// Outermost: counts what the transport delivers. Without
			// native delay the dlq would get the message back at once and
			// Nack it again every max_hold (about 15 deliveries).
			count := func(next message.HandlerFunc) message.HandlerFunc {
				return func(msg *message.Message) ([]*message.Message, error) {
					mu.Lock()
					deliveries++
					mu.Unlock()
					return next(msg)
				}
			}
			done := make(chan struct{})
			router := scenarioRouter(t)
			router.AddMiddleware(count, tr.Middleware, dl.Middleware)
			router.AddConsumerHandler("retrylater", topic, tr.Subscriber, func(msg *message.Message) error {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, time.Now())
				if len(calls) == 1 {
					return errors.New("downstream unavailable")
				}
				if len(calls) == 2 {
					close(done)
				}
				return nil
			})
			scenarioRun(t, router)
			require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))))
			select {
			case <-done:
			case <-time.After(scenarioTimeout):
				t.Fatal("the message was not retried")
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, calls, 2)
			require.Equal(t, 2, deliveries, "the transport redelivered before the delay")
			gap := calls[1].Sub(calls[0])
			t.Logf("retried %s after the failure", gap.Round(time.Millisecond))
			require.GreaterOrEqual(t, gap, delay)
		})
	}
}
