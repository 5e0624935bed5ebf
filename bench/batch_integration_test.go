//go:build integration

package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

// TestBatchPostgresExactlyOnce runs 600 messages through a GoChannel
// router, per-message middlewares and a Batcher whose func writes each batch
// to PostgreSQL in one transaction with BatchPostgresSink. Some messages fail on
// their first attempt (partial failure: they are left out of the
// transaction), one batch fails as a whole after writing (rolled back), and
// one batch panics after writing (rolled back). At the end every message is
// acked and has exactly one row.
func TestBatchPostgresExactlyOnce(t *testing.T) {
	const table = "levee_it_batch_inventory"
	insert, copySink := BatchPostgresSink(table), BatchPostgresCopySink(table)
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, tx pgx.Tx, msgs []*message.Message) error
	}{
		{"insert", func(ctx context.Context, tx pgx.Tx, msgs []*message.Message) error { return insert(ctx, tx, msgs) }},
		{"copy", func(ctx context.Context, tx pgx.Tx, msgs []*message.Message) error { return copySink(ctx, tx, msgs) }},
	} {
		t.Run(tc.name, func(t *testing.T) { batchExactlyOnce(t, table, tc.write) })
	}
}

func batchExactlyOnce(t *testing.T, table string, sink func(context.Context, pgx.Tx, []*message.Message) error) {
	const n = 600
	pool := batchOpenPool(t, batchPostgresURL(), 2)
	batchResetTable(t, pool, table)

	var mu sync.Mutex
	attempts := map[string]int{}
	calls := 0
	fn := func(ctx context.Context, msgs []*message.Message) error {
		mu.Lock()
		calls++
		call := calls
		failed := &batch.Errors{}
		var keep []*message.Message
		for i, m := range msgs {
			attempts[m.UUID]++
			if strings.HasPrefix(string(m.Payload), "flaky") && attempts[m.UUID] == 1 {
				failed.Fail(i, errors.New("flaky: first attempt rejected"))
				continue
			}
			keep = append(keep, m)
		}
		mu.Unlock()
		return pool.with(func(c *pgx.Conn) error {
			tx, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(context.Background()) // no-op after Commit
			if len(keep) > 0 {
				if err := sink(ctx, tx, keep); err != nil {
					return err
				}
			}
			switch call {
			case 3:
				return errors.New("whole batch fails after writing")
			case 5:
				panic("batch func panics after writing")
			}
			if err := tx.Commit(ctx); err != nil {
				return err
			}
			return failed
		})
	}
	b, err := batch.New(fn, batch.WithMaxSize(50), batch.WithMaxWait(20*time.Millisecond), batch.WithMaxInFlight(2))
	if err != nil {
		t.Fatal(err)
	}
	timeout, err := middleware.NewTimeout(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := testkit.New(t)
	h.Handle("inventory", "orders", b.NoPublishHandler, middleware.Chain(middleware.Recover, timeout.Middleware))
	h.Start()
	sent := h.PublishN("orders", n, func(i int) *message.Message {
		p := fmt.Sprintf(`{"sku":"sku-%d","qty":1}`, i)
		if i%9 == 0 {
			p = "flaky" + p
		}
		return message.NewMessage(watermill.NewUUID(), []byte(p))
	})
	c := h.WaitSettled(n, 2*time.Minute)
	if err := h.Close(); err != nil {
		t.Fatalf("close harness: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close batcher: %v", err)
	}
	if c.Acked != n || c.Nacked == 0 {
		t.Fatalf("got %s, want %d acked and some Nacks (partial, whole and panic failures)", c, n)
	}

	rows := map[string]int{}
	err = pool.with(func(conn *pgx.Conn) error {
		r, err := conn.Query(context.Background(), "SELECT message_uuid, count(*) FROM "+table+" GROUP BY message_uuid")
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var id string
			var k int
			if err := r.Scan(&id, &k); err != nil {
				return err
			}
			rows[id] = k
		}
		return r.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sent {
		if rows[m.UUID] != 1 {
			t.Errorf("message %s (%s): %d rows, want exactly 1", m.UUID, m.Payload, rows[m.UUID])
		}
	}
	if len(rows) != n {
		t.Errorf("got rows for %d messages, want %d", len(rows), n)
	}
	t.Logf("%s; %d batch calls", c, calls)
}
