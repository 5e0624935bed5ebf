//go:build integration

package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestHandlerQueryAtAckDeadline: a handler reads the rows of a query it
// ran in the row's transaction (wsql.TxFromContext) while the row's ack
// deadline passes, and watermill-sql commits the transaction at that
// moment: the commit must not run on the connection while the handler
// still reads from it (the race detector saw both at once). The message
// comes back.
func TestHandlerQueryAtAckDeadline(t *testing.T) {
	ch, m, msg, tx := deliveredInTx(t, "qdeadline")
	// Rows that keep coming until well after the ack deadline (1 s: with
	// 300 ms a loaded CI machine handed the message over and ran the query
	// past the deadline before the first row, and nothing was read). Each
	// row is over 8 KiB, PostgreSQL's output buffer, so that the server
	// sends it as it is made: small rows stayed in the buffer until the
	// query ended (3 s), QueryContext returned only then, past the
	// deadline and the guard's wait, and whether any row was read was a
	// race (1 run in 8 read none).
	rows, err := tx.QueryContext(context.Background(), `SELECT g, repeat('x', 9000), pg_sleep(0.05) FROM generate_series(1, 60) g`)
	require.NoError(t, err)
	read := 0
	for rows.Next() {
		read++
	}
	_ = rows.Close()
	require.Positive(t, read)
	require.Error(t, msg.Context().Err(), "the ack deadline passed while the rows were read")
	msg.Nack()

	select {
	case again := <-ch:
		require.Equal(t, m.UUID, again.UUID)
		again.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("the row given up was not delivered again")
	}
}

// TestLeakedRowsDoNotHoldTheRow: a handler that leaves the Rows of its
// query open and never reads them again must not hold the row's
// transaction past the wait for them (the ack deadline): the commit then
// runs, pgx refuses it on the busy connection and closes it, and the row
// is delivered again.
func TestLeakedRowsDoNotHoldTheRow(t *testing.T) {
	ch, m, msg, tx := deliveredInTx(t, "qleak")
	_, err := tx.QueryContext(context.Background(), `SELECT g FROM generate_series(1, 100000) g`)
	require.NoError(t, err)
	<-msg.Context().Done()
	msg.Nack()

	select {
	case again := <-ch:
		require.Equal(t, m.UUID, again.UUID)
		again.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("the row whose handler left its rows open was not delivered again")
	}
}

// deliveredInTx publishes one message to a fresh topic (prefix and a
// random suffix) of a PostgreSQL transport with a 300ms ack deadline and
// returns the subscription, the published message, its delivery and the
// delivery's row transaction.
func deliveredInTx(t *testing.T, prefix string) (<-chan *message.Message, *message.Message, *message.Message, wsql.Tx) {
	t.Helper()
	pool := pgPool(t)
	tr, err := postgres.New(context.Background(), postgres.Config{URL: brokertest.PostgresURL(), PollInterval: 20 * time.Millisecond},
		transport.Settings{Concurrency: 1, AckDeadline: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	topic := prefix + "_" + strings.ToLower(watermill.NewShortUUID())
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS "watermill_`+topic+`"`) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	m := message.NewMessage(watermill.NewUUID(), []byte("x"))
	require.NoError(t, tr.Publisher.Publish(topic, m))
	var msg *message.Message
	select {
	case msg = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("not delivered")
	}
	tx, ok := wsql.TxFromContext(msg.Context())
	require.True(t, ok)
	return ch, m, msg, tx
}
