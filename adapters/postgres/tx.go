package postgres

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// watermill-sql gives a row up when its ack deadline passes (or the
// subscription ends): it stops waiting for the Ack and commits the row's
// transaction, with the row still unacked. The handler's context ends at
// the same moment, and what it then does with the row's transaction (the
// delayed requeue's insert after a Nack with a delay, or the service's own
// statements through wsql.TxFromContext) ran on the transaction's
// connection at the same time as the commit: a data race on one pgx
// connection, which is not safe for concurrent use. The subscriber's
// transactions are therefore guarded: one statement at a time, and none
// after the commit or rollback (sql.ErrTxDone, so the requeue Nacks the
// row instead, which is then delivered again).

// guardedBeginner begins guarded transactions.
type guardedBeginner struct{ wsql.Beginner }

func (b guardedBeginner) BeginTx(ctx context.Context, opts *sql.TxOptions) (wsql.Tx, error) {
	tx, err := b.Beginner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return newGuardedTx(tx), nil
}

// errRowsOpen is the error of a statement run while the Rows of an
// earlier query of the same transaction are open (pgx refuses it too:
// "conn busy").
var errRowsOpen = errors.New("levee/postgres: the transaction's rows of an earlier query are still open")

// guardedTx serialises the use of one transaction. Safe for concurrent
// use. A query's Rows hold the transaction until they are read to the end
// or closed: a handler reading the rows of its own query through
// wsql.TxFromContext when the ack deadline passes delays the commit
// until it is done (the commit ran on the connection the rows were read
// from, a data race, TestHandlerQueryAtAckDeadline). Rows left open hold
// the row's transaction, as they hold a pgx connection.
type guardedTx struct {
	mu      sync.Mutex
	closed  sync.Cond // on mu: signalled when the open Rows end
	tx      wsql.Tx   // guarded by mu
	done    bool      // guarded by mu: committed or rolled back
	reading bool      // guarded by mu: a query's Rows are open
}

func newGuardedTx(tx wsql.Tx) *guardedTx {
	t := &guardedTx{tx: tx}
	t.closed.L = &t.mu
	return t
}

func (t *guardedTx) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(); err != nil {
		return nil, err
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *guardedTx) QueryContext(ctx context.Context, query string, args ...any) (wsql.Rows, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	t.reading = true
	return &guardedRows{Rows: rows, tx: t}, nil
}

// usable reports why no statement may run now. Called with mu held.
func (t *guardedTx) usable() error {
	if t.done {
		return sql.ErrTxDone
	}
	if t.reading {
		return errRowsOpen
	}
	return nil
}

func (t *guardedTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.reading {
		t.closed.Wait()
	}
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	return t.tx.Commit()
}

func (t *guardedTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.reading {
		t.closed.Wait()
	}
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	return t.tx.Rollback()
}

// guardedRows are the Rows of a guarded transaction's query: they give
// the transaction back when Next returns false (pgx has closed them) or
// at Close.
type guardedRows struct {
	wsql.Rows
	tx    *guardedTx
	ended sync.Once
}

func (r *guardedRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.end()
	return false
}

func (r *guardedRows) Close() error {
	err := r.Rows.Close()
	r.end()
	return err
}

func (r *guardedRows) end() {
	r.ended.Do(func() {
		r.tx.mu.Lock()
		r.tx.reading = false
		r.tx.closed.Broadcast()
		r.tx.mu.Unlock()
	})
}
