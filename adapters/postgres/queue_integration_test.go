//go:build integration

package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

func pgPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), brokertest.PostgresURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// TestPostgresQueueTable checks the topic table Levee's PostgreSQL
// transport keeps: a partial index over unacked rows (the poll's access
// path, so acked rows do not slow it down), and what an ack leaves behind:
// the row marked acked by default, no row with delete_on_ack.
func TestPostgresQueueTable(t *testing.T) {
	for _, deleteOnAck := range []bool{false, true} {
		t.Run(map[bool]string{false: "mark acked", true: "delete on ack"}[deleteOnAck], func(t *testing.T) {
			pool := pgPool(t)
			tr, err := postgres.New(context.Background(), postgres.Config{URL: brokertest.PostgresURL(),
				PollInterval: 20 * time.Millisecond, DeleteOnAck: deleteOnAck}, transport.Settings{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = tr.Close() })

			topic := "queue_" + strings.ToLower(watermill.NewShortUUID())
			table := "watermill_" + topic
			t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`) })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := tr.Subscriber.Subscribe(ctx, topic)
			require.NoError(t, err)

			var indexDef string
			require.NoError(t, pool.QueryRow(context.Background(),
				`SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexname LIKE 'levee_unacked_%'`, table).Scan(&indexDef))
			require.Contains(t, indexDef, `("offset") WHERE (acked = false)`)

			const n = 5
			for i := range n {
				require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte{byte('a' + i)})))
			}
			for range n {
				select {
				case m := <-ch:
					m.Ack()
				case <-time.After(30 * time.Second):
					t.Fatal("nothing delivered in 30s")
				}
			}
			// The last ack commits after the handler's Ack returns: wait for it.
			var rows, unacked int
			require.Eventually(t, func() bool {
				require.NoError(t, pool.QueryRow(context.Background(),
					`SELECT count(*), count(*) FILTER (WHERE NOT acked) FROM "`+table+`"`).Scan(&rows, &unacked))
				return unacked == 0
			}, 10*time.Second, 20*time.Millisecond)
			if deleteOnAck {
				require.Equal(t, 0, rows, "delete_on_ack leaves no row")
			} else {
				require.Equal(t, n, rows, "acked rows are kept, marked acked")
			}
		})
	}
}

// TestLongTopicIsRefused: over a real server, a Publish and a Subscribe of
// a topic PostgreSQL would cut to the table name of another (a 60-byte
// topic and its ".dlq" share their first 53 bytes) fail with
// ErrTopicTooLong and create no table; a topic of MaxTopicLen bytes works.
func TestLongTopicIsRefused(t *testing.T) {
	pool := pgPool(t)
	tr, err := postgres.New(context.Background(), postgres.Config{URL: brokertest.PostgresURL(), PollInterval: 20 * time.Millisecond}, transport.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	id := strings.ToLower(watermill.NewShortUUID())
	long := "longtopic_" + id + "_" + strings.Repeat("x", 60-len(id)-11)
	require.Len(t, long, 60)
	err = tr.Publisher.Publish(long, message.NewMessage(watermill.NewUUID(), []byte("x")))
	require.ErrorIs(t, err, postgres.ErrTopicTooLong)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = tr.Subscriber.Subscribe(ctx, long+".dlq")
	require.ErrorIs(t, err, postgres.ErrTopicTooLong)
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_class WHERE relname LIKE $1`, "watermill_longtopic_"+id+"%").Scan(&n))
	require.Zero(t, n, "a refused topic created a table")

	ok := "maxtopic_" + id + "_" + strings.Repeat("y", postgres.MaxTopicLen-len(id)-10)
	require.Len(t, ok, postgres.MaxTopicLen)
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS "watermill_`+ok+`"`) })
	require.NoError(t, tr.Publisher.Publish(ok, message.NewMessage(watermill.NewUUID(), []byte("x"))))
}
