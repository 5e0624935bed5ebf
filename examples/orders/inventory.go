package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/redact"
)

// inventorySink writes a batch of paid orders' reservations; msgs are the
// orders' messages (their contexts carry the dedup claims).
type inventorySink interface {
	Write(ctx context.Context, orders []Order, msgs []*message.Message) error
	Close()
}

// memorySink reserves in the in-memory Inventory (the embedded default);
// the dedup middleware marks each order done after the batch succeeded.
type memorySink struct{ inv *Inventory }

func (s memorySink) Write(_ context.Context, orders []Order, _ []*message.Message) error {
	for _, o := range orders {
		for _, it := range o.Items {
			s.inv.Reserve(it.SKU, it.Qty)
		}
	}
	return nil
}

func (memorySink) Close() {}

// pgSink writes one row per order line into PostgreSQL with a single
// multi-row INSERT per batch, in one transaction with the orders' dedup
// done marks (the PostgreSQL inbox, adapters/pgdedup): an order's rows and
// its mark commit together or not at all, so a redelivered or duplicated
// order (same order id, whatever its message UUID) writes nothing, even
// after a crash at any point. This is the only way to get exactly-once
// side effects into PostgreSQL; the (message_uuid, sku) key alone would
// not catch a copy published with a new UUID.
type pgSink struct {
	pool  *pgxpool.Pool
	inbox *pgdedup.Store
	inv   *Inventory

	mu      sync.Mutex // guards written and lines
	written []string   // message UUIDs written by this run
	lines   int
}

const pgSchema = `CREATE TABLE IF NOT EXISTS levee_orders_inventory (
	message_uuid text NOT NULL,
	order_id     text NOT NULL,
	sku          text NOT NULL,
	qty          int  NOT NULL,
	PRIMARY KEY (message_uuid, sku)
)`

func newPGSink(ctx context.Context, url string, inv *Inventory) (*pgSink, error) {
	if strings.Contains(url, "://") {
		if _, err := redact.ParseURL(url); err != nil {
			return nil, fmt.Errorf("-postgres: %w", err)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("postgres %s: %w", redact.URL(url), err), url)
	}
	if _, err := pool.Exec(ctx, pgSchema); err != nil {
		pool.Close()
		return nil, redact.Error(fmt.Errorf("postgres %s: creating table: %w", redact.URL(url), err), url)
	}
	inbox, err := pgdedup.New(ctx, pool, pgdedup.WithTable("levee_orders_dedup"))
	if err != nil {
		pool.Close()
		return nil, redact.Error(fmt.Errorf("postgres %s: %w", redact.URL(url), err), url)
	}
	return &pgSink{pool: pool, inbox: inbox, inv: inv}, nil
}

// Write marks the batch's orders done first (one statement), then writes
// the rows of the orders it marked, and commits both.
func (s *pgSink) Write(ctx context.Context, orders []Order, msgs []*message.Message) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
	ctxs := make([]context.Context, len(msgs))
	for i, m := range msgs {
		ctxs[i] = m.Context()
	}
	marked, err := s.inbox.MarkDoneAll(ctx, tx, ctxs)
	if err != nil {
		return err
	}
	var ids, orderIDs, skus []string
	var qtys []int32
	var fresh []Order
	var uuids []string
	for i, o := range orders {
		if !marked[i] {
			continue // another delivery of this order committed first
		}
		fresh, uuids = append(fresh, o), append(uuids, msgs[i].UUID)
		for _, it := range o.Items {
			ids = append(ids, msgs[i].UUID)
			orderIDs = append(orderIDs, o.ID)
			skus = append(skus, it.SKU)
			qtys = append(qtys, int32(it.Qty))
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO levee_orders_inventory (message_uuid, order_id, sku, qty)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])`, ids, orderIDs, skus, qtys); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.written = append(s.written, uuids...)
	s.lines += len(ids)
	s.mu.Unlock()
	return memorySink{inv: s.inv}.Write(ctx, fresh, nil)
}

func (s *pgSink) Close() {
	_ = s.inbox.Close()
	s.pool.Close()
}

// Rows counts the table's rows written for this run's messages and the
// order lines this run wrote (they must be equal: exactly once).
func (s *pgSink) Rows(ctx context.Context) (rows, lines int, err error) {
	s.mu.Lock()
	ids := append([]string(nil), s.written...)
	lines = s.lines
	s.mu.Unlock()
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM levee_orders_inventory WHERE message_uuid = ANY($1)`, ids).Scan(&rows)
	return rows, lines, err
}

// DuplicatedLines counts the order lines of this run's messages that
// were written more than once (by two messages of one order): 0 when the
// inbox did its job.
func (s *pgSink) DuplicatedLines(ctx context.Context) (n int, err error) {
	s.mu.Lock()
	ids := append([]string(nil), s.written...)
	s.mu.Unlock()
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT order_id, sku FROM levee_orders_inventory
		WHERE message_uuid = ANY($1) GROUP BY order_id, sku HAVING count(*) > 1) AS d`, ids).Scan(&n)
	return n, err
}

// inventoryBatch returns the batch func: it decodes every message, fails
// the malformed ones alone (class validation: they are dead-lettered, not
// retried) and writes the rest in one go.
func inventoryBatch(sink inventorySink) batch.Func {
	return func(ctx context.Context, msgs []*message.Message) error {
		var (
			failed *batch.Errors
			orders []Order
			ok     []*message.Message
		)
		for i, m := range msgs {
			var o Order
			if err := json.Unmarshal(m.Payload, &o); err != nil {
				if failed == nil {
					failed = &batch.Errors{}
				}
				failed.Fail(i, invalid(fmt.Errorf("inventory update: %w", err)))
				continue
			}
			orders = append(orders, o)
			ok = append(ok, m)
		}
		if len(orders) > 0 {
			if err := sink.Write(ctx, orders, ok); err != nil {
				return err // every message fails and is retried
			}
		}
		if failed != nil {
			return failed
		}
		return nil
	}
}

// validationError marks a malformed message: its ErrorClass tells the dlq
// layer to dead-letter it at once with class validation.
type validationError struct{ err error }

func (e *validationError) Error() string      { return e.err.Error() }
func (e *validationError) Unwrap() error      { return e.err }
func (e *validationError) ErrorClass() string { return "validation" }

func invalid(err error) error { return &validationError{err: err} }
