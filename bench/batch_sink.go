package bench

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// BatchPostgresExecer runs a statement: *pgx.Conn, pgx.Tx and a pool's
// connection all satisfy it.
type BatchPostgresExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// BatchPostgresSink returns a batch writer for the orders example's inventory
// updates: it writes one row (message_uuid, payload) per message of a batch
// into table with a single multi-row INSERT (unnest of two arrays), so a
// batch is one statement and one round trip, atomically: either every row of
// the batch is written or none (the batch func then returns the error and
// every message is Nacked).
//
// Wrap it in a batch.Func that picks a connection:
//
//	sink := bench.BatchPostgresSink("inventory_updates")
//	fn := func(ctx context.Context, msgs []*message.Message) error {
//		return sink(ctx, conn, msgs) // conn: *pgx.Conn, a pgx.Tx, or a pool's connection
//	}
//
// With a unique constraint on message_uuid, append
// "ON CONFLICT (message_uuid) DO NOTHING" to make redelivered messages
// idempotent.
func BatchPostgresSink(table string) func(ctx context.Context, c BatchPostgresExecer, msgs []*message.Message) error {
	q := fmt.Sprintf(`INSERT INTO %s (message_uuid, payload) SELECT * FROM unnest($1::text[], $2::text[])`,
		pgx.Identifier{table}.Sanitize())
	return func(ctx context.Context, c BatchPostgresExecer, msgs []*message.Message) error {
		ids := make([]string, len(msgs))
		payloads := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.UUID
			payloads[i] = string(m.Payload)
		}
		_, err := c.Exec(ctx, q, ids, payloads)
		return err
	}
}

// BatchPostgresCopier runs COPY FROM: *pgx.Conn and pgx.Tx satisfy it.
type BatchPostgresCopier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// BatchPostgresCopySink is BatchPostgresSink with COPY instead of INSERT: the fastest
// way to write a batch of 100 rows or more (see docs/BENCHMARKS.md, section
// batch). COPY has no ON CONFLICT, so a redelivered message is written
// again; run it in the same transaction as anything else the batch writes,
// so a failed batch leaves no rows.
func BatchPostgresCopySink(table string) func(ctx context.Context, c BatchPostgresCopier, msgs []*message.Message) error {
	id := pgx.Identifier{table}
	cols := []string{"message_uuid", "payload"}
	return func(ctx context.Context, c BatchPostgresCopier, msgs []*message.Message) error {
		_, err := c.CopyFrom(ctx, id, cols, pgx.CopyFromSlice(len(msgs), func(i int) ([]any, error) {
			return []any{msgs[i].UUID, string(msgs[i].Payload)}, nil
		}))
		return err
	}
}
