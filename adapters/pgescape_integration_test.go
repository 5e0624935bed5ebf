//go:build integration

package adapters_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
)

// TestPostgresNulMetadata checks that metadata PostgreSQL's JSON
// operators refuse (a NUL byte, stored as \u0000, fails the poll's
// metadata->>'levee_redeliver_at' for the whole table) neither stops the
// topic nor is lost: a message with a NUL and invalid UTF-8 in its
// metadata, published with Levee's publisher between two normal ones, is
// delivered with its metadata intact, Nacked with a retry-after it is
// requeued (the requeue's ::jsonb) and delivered again after the delay,
// and the messages after it are delivered meanwhile. A row with \u0000
// written by something else (watermill-sql's own publisher) is delivered
// at once, and requeued with a delay too.
func TestPostgresNulMetadata(t *testing.T) {
	const delay = 500 * time.Millisecond
	pool := pgPool(t)
	tr, err := adapters.New(context.Background(), adapters.WithPostgres(postgresURL),
		adapters.WithPostgresPollInterval(20*time.Millisecond), adapters.WithConcurrency(1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	topic := "nul_" + strings.ToLower(watermill.NewShortUUID())
	table := `"watermill_` + topic + `"`
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP TABLE IF EXISTS `+table) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	receive := func(what string) *message.Message {
		t.Helper()
		select {
		case m := <-ch:
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing delivered in 10s (a row wedges the topic?)", what)
			return nil
		}
	}
	nack := func(m *message.Message) {
		t.Helper()
		_, herr := tr.Middleware(func(*message.Message) ([]*message.Message, error) {
			return nil, retryAfterErr{d: delay}
		})(m)
		require.Error(t, herr)
		m.Nack()
	}
	hostile := message.Metadata{"note": "a\x00b", "k\x00ey": "v", "bin": "\xff\xfe", "plain": "p", "levee_pg_escaped": "producer's"}

	publish := func(payload string, md message.Metadata) string {
		t.Helper()
		m := message.NewMessage(watermill.NewUUID(), []byte(payload))
		for k, v := range md {
			m.Metadata.Set(k, v)
		}
		require.NoError(t, tr.Publisher.Publish(topic, m))
		return m.UUID
	}
	publish("before", nil)
	nulUUID := publish("nul", hostile)
	publish("after", message.Metadata{"k": "v"})

	var nacked time.Time
	for _, want := range []string{"before", "nul", "after"} {
		m := receive(want)
		require.Equal(t, want, string(m.Payload))
		if want == "nul" {
			for k, v := range hostile {
				require.Equal(t, v, m.Metadata.Get(k), "metadata %q", k)
			}
			require.Len(t, m.Metadata, len(hostile))
			nacked = time.Now()
			nack(m)
			continue
		}
		m.Ack()
	}
	publish("later", nil)
	later := receive("a message published after the Nack")
	require.Equal(t, "later", string(later.Payload))
	later.Ack()

	again := receive("the NUL message after its delay")
	require.Equal(t, nulUUID, again.UUID)
	require.Equal(t, "nul", string(again.Payload))
	require.GreaterOrEqual(t, time.Since(nacked), delay, "redelivered before the delay")
	for k, v := range hostile {
		require.Equal(t, v, again.Metadata.Get(k), "metadata %q after the requeue", k)
	}
	require.Empty(t, again.Metadata.Get(adapters.MetadataRedeliverAt))
	again.Ack()

	// No row Levee wrote holds \u0000: each one's metadata is valid jsonb.
	var unsafe int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM `+table+` WHERE strpos(metadata::text, '\u0000') > 0`).Scan(&unsafe))
	require.Zero(t, unsafe)
	_, err = pool.Exec(context.Background(), `SELECT metadata::jsonb FROM `+table)
	require.NoError(t, err)

	// A row written by something else, with \u0000 as watermill-sql's
	// publisher stores it, then a normal one.
	foreign := watermill.NewUUID()
	_, err = pool.Exec(context.Background(), `INSERT INTO `+table+` (uuid, payload, metadata) VALUES ($1, $2, $3::json)`,
		foreign, []byte("foreign"), `{"note":"a\u0000b","lit":"\\u0000"}`)
	require.NoError(t, err)
	publish("after foreign", nil)
	m := receive("a row with \\u0000 written by watermill-sql")
	require.Equal(t, foreign, m.UUID)
	require.Equal(t, "a\x00b", m.Metadata.Get("note"))
	require.Equal(t, `\u0000`, m.Metadata.Get("lit"))
	nack(m)
	after := receive("a message after the foreign row")
	require.Equal(t, "after foreign", string(after.Payload))
	after.Ack()
	m = receive("the foreign row after its delay")
	require.Equal(t, foreign, m.UUID)
	require.Equal(t, "a\x00b", m.Metadata.Get("note"))
	require.Equal(t, `\u0000`, m.Metadata.Get("lit"))
	m.Ack()
}
