package postgres

import (
	"context"
	"database/sql"
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
	return &guardedTx{tx: tx}, nil
}

// guardedTx serialises the use of one transaction. Safe for concurrent
// use; the Rows a query returns are read by the caller alone (watermill-sql
// reads its poll's rows before it hands a message over).
type guardedTx struct {
	mu   sync.Mutex
	tx   wsql.Tx // guarded by mu
	done bool    // guarded by mu: committed or rolled back
}

func (t *guardedTx) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil, sql.ErrTxDone
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *guardedTx) QueryContext(ctx context.Context, query string, args ...any) (wsql.Rows, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil, sql.ErrTxDone
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *guardedTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	return t.tx.Commit()
}

func (t *guardedTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	return t.tx.Rollback()
}
