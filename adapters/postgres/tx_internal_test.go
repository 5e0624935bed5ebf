package postgres

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// fakeConn is a connection that records what touched it after its
// transaction ended; -race sees the Rows' calls and the commit as the
// unsynchronised accesses to it they are.
type fakeConn struct {
	ended bool // written by Commit, read by every Rows call
	after []string
}

func (c *fakeConn) touch(what string) {
	if c.ended {
		c.after = append(c.after, what)
	}
}

type fakeTx struct{ c *fakeConn }

func (x fakeTx) ExecContext(context.Context, string, ...any) (wsql.Result, error) { return nil, nil }
func (x fakeTx) QueryContext(context.Context, string, ...any) (wsql.Rows, error) {
	return fakeRows(x), nil
}
func (x fakeTx) Commit() error   { x.c.ended = true; return nil }
func (x fakeTx) Rollback() error { x.c.ended = true; return nil }

type fakeRows struct{ c *fakeConn }

func (r fakeRows) Next() bool        { r.c.touch("Next"); return true }
func (r fakeRows) Scan(...any) error { r.c.touch("Scan"); return nil }
func (r fakeRows) Close() error      { r.c.touch("Close"); return nil }

// TestSlowReaderDoesNotRaceTheCommit: a handler reads its query's rows,
// then is not scheduled for longer than the commit's wait for them (a
// busy machine). The commit gives the rows up and runs; the reader's next
// calls must not touch the connection (before, its Next ran on it after
// the commit: the race detector saw TestHandlerQueryAtAckDeadline do so
// under load), and Next reports the end.
func TestSlowReaderDoesNotRaceTheCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeConn{}
		tx := newGuardedTx(fakeTx{c}, 300*time.Millisecond)
		rows, err := tx.QueryContext(context.Background(), "SELECT")
		if err != nil {
			t.Fatal(err)
		}
		if !rows.Next() {
			t.Fatal("no first row")
		}
		committed := make(chan error, 1)
		go func() { committed <- tx.Commit() }()
		time.Sleep(time.Second) // the reader stalls past the wait
		synctest.Wait()
		select {
		case err := <-committed:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("the commit still waits for rows unread for a second")
		}
		if rows.Next() {
			t.Error("Next after the commit reported a row")
		}
		if err := rows.Scan(); !errors.Is(err, errRowsAbandoned) {
			t.Errorf("Scan after the commit: got %v, want errRowsAbandoned", err)
		}
		_ = rows.Close()
		if len(c.after) > 0 {
			t.Errorf("the rows touched the connection after the commit: %v", c.after)
		}
	})
}

// TestReadRowsHoldTheCommit: rows still being read hold the commit
// however long (their Next returns only now and then), and the commit runs
// once they are closed.
func TestReadRowsHoldTheCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeConn{}
		tx := newGuardedTx(fakeTx{c}, 300*time.Millisecond)
		rows, err := tx.QueryContext(context.Background(), "SELECT")
		if err != nil {
			t.Fatal(err)
		}
		committed := make(chan error, 1)
		go func() { committed <- tx.Commit() }()
		for range 20 { // 2 s of rows, one each 100ms
			time.Sleep(100 * time.Millisecond)
			if !rows.Next() {
				t.Fatal("rows still read were given up")
			}
		}
		select {
		case <-committed:
			t.Fatal("committed while the rows were read")
		default:
		}
		_ = rows.Close()
		if err := <-committed; err != nil {
			t.Fatal(err)
		}
		if len(c.after) > 0 {
			t.Errorf("the rows touched the connection after the commit: %v", c.after)
		}
	})
}
