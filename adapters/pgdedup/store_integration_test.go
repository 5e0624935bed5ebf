//go:build integration

package pgdedup_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dedup/deduptest"
	"github.com/levee-dev/levee/internal/brokertest"
)

// pool connects to the test database, or skips.
func pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	brokertest.SkipIfDown(t, brokertest.PostgresURL())
	p, err := pgxpool.New(context.Background(), brokertest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// inbox returns a Store on a fresh table, dropped when the test ends.
func inbox(t testing.TB, p *pgxpool.Pool) *pgdedup.Store {
	t.Helper()
	table := brokertest.Fresh(t, "levee_dedup_test", func(name string) error {
		_, err := p.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		return err
	})
	s, err := pgdedup.New(context.Background(), p, pgdedup.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	p := pool(t)
	s := inbox(t, p)
	deduptest.Run(t, "k", func(*testing.T) dedup.Store { return s })
}

// TestMarkDoneCommitsWithTheWrites: the handler's write and the mark
// commit together; a rolled-back transaction leaves neither, and the
// retry runs; a second delivery that races past an ended lease finds the
// mark and writes nothing.
func TestMarkDoneCommitsWithTheWrites(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	s := inbox(t, p)
	fx := effectsTable(t, p)
	d, err := dedup.New(dedup.WithStore(s), dedup.WithLease(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fail := true
	h := d.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		tx, err := p.Begin(msg.Context())
		if err != nil {
			return nil, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(msg.Context(), "INSERT INTO "+fx+" (key) VALUES ($1)", msg.UUID); err != nil {
			return nil, err
		}
		if err := s.MarkDone(msg.Context(), tx); errors.Is(err, dedup.ErrAlreadyDone) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		if fail {
			fail = false
			return nil, errors.New("crash before commit")
		}
		return nil, tx.Commit(msg.Context())
	})
	for range 3 {
		_, _ = h(message.NewMessage("m1", nil))
	}
	// A delivery whose claim was lost: its mark must find the done row.
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+fx+" (key) VALUES ('m1')"); err != nil {
		t.Fatal(err)
	}
	ticketCtx := ticketFor(t, d, "m1")
	if err := s.MarkDone(ticketCtx, tx); !errors.Is(err, dedup.ErrAlreadyDone) {
		t.Errorf("late mark: got %v, want ErrAlreadyDone", err)
	}
	_ = tx.Rollback(ctx)
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM "+fx).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("side effects: got %d rows, want 1", n)
	}
	if err := s.MarkDone(ctx, tx); !errors.Is(err, pgdedup.ErrNoTicket) {
		t.Errorf("no ticket: got %v, want ErrNoTicket", err)
	}
}

// ticketFor returns the context a handler under d sees for a fresh
// message with uuid (its claim is taken over when the lease allows it;
// here it is only used for the late-mark case, which needs the ticket).
func ticketFor(t *testing.T, d *dedup.Dedup, uuid string) context.Context {
	t.Helper()
	var got context.Context
	s, _ := dedup.NewMemStore(1)
	d2, err := dedup.New(dedup.WithStore(txMem{s}), dedup.WithWindow(d.Window()))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = d2.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		got = msg.Context()
		return nil, errors.New("only the ticket")
	})(message.NewMessage(uuid, nil))
	return got
}

// txMem is a MemStore that makes the middleware hand out tickets.
type txMem struct{ *dedup.MemStore }

func (txMem) MarksInTransaction() {}
