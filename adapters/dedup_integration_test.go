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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/middleware"
)

// dedupEnv is one run of the dedup suite on one transport: the PostgreSQL
// inbox, a side-effect table (one row per committed handler run, keyed by
// the message's identity), and names shared with the child process.
type dedupEnv struct {
	tc      transportCase
	pool    *pgxpool.Pool
	inbox   *pgdedup.Store
	fx      string // quoted side-effect table
	group   string
	topic   string
	failing atomic.Value // string: an identity whose first run fails permanently
}

// TestDedupOverBrokers: side effects, counted in PostgreSQL rows, happen
// exactly once per message over RabbitMQ, NATS JetStream, Redis Streams,
// the PostgreSQL transport and Kafka (kfake; the child reaches the
// parent's cluster through envKafkaBrokers) when the same message is
// published three times, when the consumer is SIGKILLed between its
// handler and the ack (a child process: this test binary re-executed) and
// the broker redelivers, and when the dead letter of a message that did
// succeed is replayed (dropped; with a new identity it runs again).
func TestDedupOverBrokers(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.PostgresURL())
	var cases []transportCase
	for _, tc := range transportCases(t) {
		if tc.name != "gochannel" { // not shared with the child process
			cases = append(cases, tc)
		}
	}
	// The transports at the same time (each waits on its broker and its
	// child process), each its cases in turn. The sigkill case needs each
	// of the child's members to take one message: on Redis, members that
	// do not read ahead (TestRedisBusyMemberDoesNotReadAhead).
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) {
		tc := cases[i]
		e := newDedupEnv(t, tc, "levee_dd_"+tc.name+"_"+brokertest.Suffix(), "")
		t.Run("published_3x", e.publishedThrice)
		t.Run("sigkill_between_handler_and_ack", e.sigkill)
		t.Run("replay_of_succeeded_letter", e.replaySucceeded)
	})
}

// newDedupEnv builds the env; with fx == "" it creates the inbox and the
// side-effect table (dropped at the end), else it uses the parent's.
func newDedupEnv(t *testing.T, tc transportCase, name, fx string) *dedupEnv {
	t.Helper()
	ctx := context.Background()
	p, err := pgxpool.New(ctx, brokertest.PostgresURL())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	e := &dedupEnv{tc: tc, pool: p, group: name, topic: name}
	e.failing.Store("")
	if fx == "" {
		fx = pgx.Identifier{name + "_fx"}.Sanitize()
		_, err = p.Exec(ctx, "CREATE TABLE "+fx+" (id serial PRIMARY KEY, key text NOT NULL)")
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = p.Exec(context.Background(), "DROP TABLE IF EXISTS "+fx+", "+pgx.Identifier{name + "_inbox"}.Sanitize())
		})
	}
	e.fx = fx
	e.inbox, err = pgdedup.New(ctx, p, pgdedup.WithTable(name+"_inbox"), pgdedup.WithPruneEvery(0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.inbox.Close() })
	return e
}

// handler writes one side-effect row and the done mark in one
// transaction; the identity in e.failing fails permanently once.
func (e *dedupEnv) handler(msg *message.Message) ([]*message.Message, error) {
	ctx := msg.Context()
	t, _ := dedup.TicketFrom(ctx)
	if f := e.failing.Load().(string); f != "" && t != nil && t.Key() == f {
		e.failing.Store("")
		return nil, dlq.Permanent(errors.New("downstream rejected it (wrongly)"))
	}
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "INSERT INTO "+e.fx+" (key) VALUES ($1)", t.Key()); err != nil {
		return nil, err
	}
	if err := e.inbox.MarkDone(ctx, tx); errors.Is(err, dedup.ErrAlreadyDone) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return nil, tx.Commit(ctx)
}

// consumer starts a router consuming topic through dlq and dedup (the
// canonical order) with the given outermost middleware (nil: none), and
// returns the Dedup; the router stops when the test ends.
func (e *dedupEnv) consumer(t *testing.T, topic string, outer message.HandlerMiddleware) (*dedup.Dedup, *adapters.Transport) {
	t.Helper()
	tr := newTransport(t, e.tc, e.groupFor(), adapters.WithConcurrency(4))
	d, err := dedup.New(dedup.WithStore(e.inbox), dedup.WithLease(time.Minute))
	require.NoError(t, err)
	r, err := dlq.New(tr.Publisher, dlq.WithTopic(topic+".dlq"), dlq.WithMaxAttempts(3))
	require.NoError(t, err)
	router := scenarioRouter(t)
	if outer != nil {
		router.AddMiddleware(outer)
	}
	stack := middleware.NewStack().DLQ(r.Middleware).Dedup(d.Middleware)
	router.AddConsumerHandler("dedup", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(e.handler)))
	scenarioRun(t, router)
	return d, tr
}

// groupFor is the consumer group: NATS needs one (a durable consumer the
// child and the parent share); RabbitMQ's queue is the topic.
func (e *dedupEnv) groupFor() string {
	if e.tc.group == "" {
		return ""
	}
	return e.group
}

// rows returns the side-effect rows and distinct identities for keys
// (all rows when keys is nil).
func (e *dedupEnv) rows(t *testing.T, keys []string) (rows, distinct int) {
	t.Helper()
	q := "SELECT count(*), count(DISTINCT key) FROM " + e.fx + " WHERE $1::text[] IS NULL OR key = ANY($1)"
	require.NoError(t, e.pool.QueryRow(context.Background(), q, keys).Scan(&rows, &distinct))
	return rows, distinct
}

func (e *dedupEnv) publishedThrice(t *testing.T) {
	const n = 10
	topic := e.topic + "_3x"
	d, tr := e.consumer(t, topic, nil)
	var keys []string
	for range n {
		m := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
		keys = append(keys, m.UUID)
		for range 3 {
			require.NoError(t, tr.Publisher.Publish(topic, m.Copy()))
		}
	}
	scenarioWait(t, "every copy handled or dropped", func() bool {
		rows, _ := e.rows(t, keys)
		return rows >= n && d.Stats().Duplicates >= 2*n
	})
	rows, distinct := e.rows(t, keys)
	require.Equal(t, n, rows, "side-effect rows")
	require.Equal(t, n, distinct, "identities with a row")
	require.EqualValues(t, 2*n, d.Stats().Duplicates, "duplicates dropped")
}
