package postgres

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// watermill-sql gives a row up when its ack deadline passes (or, when
// Close or the subscription's end did not wait for the row's handler,
// delay.go): it stops waiting for the Ack and commits the row's
// transaction, with the row still unacked. The handler's context ends at
// the same moment, and what it then does with the row's transaction (the
// delayed requeue's insert after a Nack with a delay, or the service's own
// statements through wsql.TxFromContext) ran on the transaction's
// connection at the same time as the commit: a data race on one pgx
// connection, which is not safe for concurrent use. The subscriber's
// transactions are therefore guarded: one statement at a time, and none
// after the commit or rollback (sql.ErrTxDone, so the requeue Nacks the
// row instead, which is then delivered again).

// defaultRowsWait bounds a commit's wait for open Rows when the
// subscription has no ack deadline.
const defaultRowsWait = 30 * time.Second

// guardedBeginner begins guarded transactions. rowsWait (the ack
// deadline) bounds how long a commit or rollback waits for a query's Rows
// that nobody reads: Rows a handler left open must not hold the
// subscriber; the commit then runs, pgx refuses it ("conn busy") and
// closes the connection, and the row is delivered again.
type guardedBeginner struct {
	wsql.Beginner
	rowsWait time.Duration
}

func (b guardedBeginner) BeginTx(ctx context.Context, opts *sql.TxOptions) (wsql.Tx, error) {
	tx, err := b.Beginner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return newGuardedTx(tx, b.rowsWait), nil
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
// from, a data race, TestHandlerQueryAtAckDeadline). Rows left open and
// no longer read hold it rowsWait at most (TestLeakedRowsDoNotHoldTheRow).
//
// A call of the open Rows (Next, Scan, Close) holds rowsMu, and so does
// the commit's wait when it gives up on Rows left unread: from then on
// (abandoned) the Rows no longer touch the connection, so a reader that
// was only slow (a goroutine not scheduled for rowsWait on a busy
// machine) cannot race the commit: its Next returns false, its Scan
// errRowsAbandoned.
type guardedTx struct {
	mu       sync.Mutex
	tx       wsql.Tx       // guarded by mu
	done     bool          // guarded by mu: committed or rolled back
	finished chan struct{} // closed when done is set
	reading  chan struct{} // guarded by mu: non-nil while a query's Rows are open, closed when they end
	rowsWait time.Duration
	// calls counts the open Rows' calls begun: Rows still read are
	// waited for, however long.
	calls     atomic.Uint64
	rowsMu    sync.Mutex
	abandoned bool // guarded by rowsMu
}

// errRowsAbandoned is Scan's error on Rows that went unread for the
// commit's whole wait: the transaction was committed without them.
var errRowsAbandoned = errors.New("levee/postgres: the rows were given up: the row's transaction ended (its ack deadline passed) while they went unread")

func newGuardedTx(tx wsql.Tx, rowsWait time.Duration) *guardedTx {
	if rowsWait <= 0 {
		rowsWait = defaultRowsWait
	}
	return &guardedTx{tx: tx, rowsWait: rowsWait, finished: make(chan struct{})}
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
	t.reading = make(chan struct{})
	return &guardedRows{Rows: rows, tx: t}, nil
}

// usable reports why no statement may run now. Called with mu held.
func (t *guardedTx) usable() error {
	if t.done {
		return sql.ErrTxDone
	}
	if t.reading != nil {
		return errRowsOpen
	}
	return nil
}

func (t *guardedTx) Commit() error {
	t.lockIdle()
	defer t.mu.Unlock()
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	defer close(t.finished)
	return t.tx.Commit()
}

func (t *guardedTx) Rollback() error {
	t.lockIdle()
	defer t.mu.Unlock()
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	defer close(t.finished)
	return t.tx.Rollback()
}

// lockIdle locks mu once no query's Rows are open, or once they went
// unread for rowsWait (Rows left open and never read again): no call of
// them running or made during that time. Such Rows are then abandoned.
func (t *guardedTx) lockIdle() {
	timer := time.NewTimer(t.rowsWait)
	defer timer.Stop()
	seen := t.calls.Load()
	for {
		t.mu.Lock()
		reading := t.reading
		if reading == nil {
			return
		}
		t.mu.Unlock()
		select {
		case <-reading:
		case <-timer.C:
			if t.abandonIdle(seen) {
				t.mu.Lock()
				return
			}
			seen = t.calls.Load()
			timer.Reset(t.rowsWait)
		}
	}
}

// abandonIdle abandons the open Rows if none of their calls is running
// and none began since seen, and reports whether it did.
func (t *guardedTx) abandonIdle(seen uint64) bool {
	if !t.rowsMu.TryLock() {
		return false // a call is running: still read
	}
	defer t.rowsMu.Unlock()
	if t.calls.Load() != seen {
		return false
	}
	t.abandoned = true
	return true
}

// enter begins a call of the open Rows; false when they were abandoned
// (the call must not touch the connection). leave ends it.
func (t *guardedTx) enter() bool {
	t.rowsMu.Lock()
	if t.abandoned {
		t.rowsMu.Unlock()
		return false
	}
	t.calls.Add(1)
	return true
}

func (t *guardedTx) leave() { t.rowsMu.Unlock() }

// guardedRows are the Rows of a guarded transaction's query: they give
// the transaction back when Next returns false (pgx has closed them) or
// at Close.
type guardedRows struct {
	wsql.Rows
	tx    *guardedTx
	ended sync.Once
}

func (r *guardedRows) Next() bool {
	if !r.tx.enter() {
		r.end()
		return false
	}
	more := r.Rows.Next()
	r.tx.leave()
	if more {
		return true
	}
	r.end()
	return false
}

func (r *guardedRows) Scan(dest ...any) error {
	if !r.tx.enter() {
		return errRowsAbandoned
	}
	defer r.tx.leave()
	return r.Rows.Scan(dest...)
}

// Close closes the Rows; abandoned ones went with their transaction.
func (r *guardedRows) Close() error {
	var err error
	if r.tx.enter() {
		err = r.Rows.Close()
		r.tx.leave()
	}
	r.end()
	return err
}

func (r *guardedRows) end() {
	r.ended.Do(func() {
		r.tx.mu.Lock()
		close(r.tx.reading)
		r.tx.reading = nil
		r.tx.mu.Unlock()
	})
}

// txFinished returns a channel closed when the guarded transaction in
// ctx (a row's, wsql.TxFromContext) is committed or rolled back, or nil
// when ctx holds none.
func txFinished(ctx context.Context) <-chan struct{} {
	if tx, ok := wsql.TxFromContext(ctx); ok {
		if g, ok := tx.(*guardedTx); ok {
			return g.finished
		}
	}
	return nil
}
