//go:build integration

package pgdedup_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dedup/deduptest"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/middleware"
)

// TestConformanceHostileKeys runs the conformance suite on keys the text
// column cannot keep as they are (a NUL byte, invalid UTF-8) and on keys
// that start like their escaped form: the inbox keeps every semantics for
// them.
func TestConformanceHostileKeys(t *testing.T) {
	p := pool(t)
	s := inbox(t, p)
	for name, prefix := range map[string]string{"nul": "nul\x00", "invalid utf-8": "bad\xff\xc3(", "escape prefix": "\x7fhex:6b"} {
		t.Run(name, func(t *testing.T) {
			deduptest.Run(t, prefix, func(*testing.T) dedup.Store { return s })
		})
	}
}

// TestHostileIdentities: identities with a NUL byte or invalid UTF-8 (a
// UUID from AMQP or NATS, or a producer's levee_dedup_id) are processed
// once each, as with the memory and Redis stores, behind the dlq in the
// canonical order: their duplicates are acked without running, their
// done marks are seen by IsDone and by a transactional mark, and no two
// of them share a row with each other or with a key that looks like an
// escaped one.
func TestHostileIdentities(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	s := inbox(t, p)
	d, err := dedup.New(dedup.WithStore(s), dedup.WithStoreTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var letters capture
	r, err := dlq.New(&letters, dlq.WithTopic("t.dlq"), dlq.WithMaxAttempts(2), dlq.WithMaxHold(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	h := middleware.NewStack().DLQ(r.Middleware).Dedup(d.Middleware).Middleware(func(msg *message.Message) ([]*message.Message, error) {
		calls[msg.UUID+"|"+msg.Metadata.Get(levee.KeyDedupID)]++
		return nil, nil
	})
	ids := []string{"nul\x00uuid", "bad\xffuuid", "a\x00", "\x7fhex:6100", "6100", "\x7fhex:7fhex:6100", "a"}
	for round := range 2 {
		for _, id := range ids {
			if _, err := h(message.NewMessage(id, []byte(`{}`))); err != nil {
				t.Fatalf("round %d, uuid %q: got %v, want nil", round, id, err)
			}
		}
		// The same identities from a producer's levee_dedup_id.
		for _, id := range ids[:2] {
			m := message.NewMessage("other-uuid-"+id, []byte(`{}`))
			m.Metadata.Set(levee.KeyDedupID, id)
			if _, err := h(m); err != nil {
				t.Fatalf("round %d, levee_dedup_id %q: got %v, want nil", round, id, err)
			}
		}
	}
	for _, id := range ids {
		if got := calls[id+"|"]; got != 1 {
			t.Errorf("uuid %q: got %d handler calls, want 1 (processed, then a duplicate)", id, got)
		}
		done, err := s.IsDone(ctx, id)
		if err != nil || !done {
			t.Errorf("IsDone(%q): got %v, %v, want true", id, done, err)
		}
	}
	for _, id := range ids[:2] {
		if got := calls["other-uuid-"+id+"|"+id]; got != 0 {
			t.Errorf("levee_dedup_id %q of a done identity: got %d handler calls, want 0", id, got)
		}
	}
	if len(letters.msgs) != 0 {
		t.Errorf("dead letters: got %d, want 0", len(letters.msgs))
	}
	var rows int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM "+s.Table()).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(ids) {
		t.Errorf("inbox rows: got %d, want %d (one per identity)", rows, len(ids))
	}
	// Keys the column keeps are stored as they are: rows written before
	// escaping existed still match.
	var plain int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM "+s.Table()+" WHERE key = ANY($1)", []string{"6100", "a"}).Scan(&plain); err != nil {
		t.Fatal(err)
	}
	if plain != 2 {
		t.Errorf("keys stored as they are: got %d, want 2", plain)
	}

	// The transactional marks, one and in a batch, on fresh hostile keys.
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	one, all := "tx\x00one", []string{"tx\x00all", "tx\xffall", "tx\x00all"}
	var ctxs []context.Context
	for _, id := range append([]string{one}, all...) {
		ctxs = append(ctxs, ticketFor(t, d, id))
	}
	if err := s.MarkDone(ctxs[0], tx); err != nil {
		t.Fatalf("MarkDone(%q): %v", one, err)
	}
	marked, err := s.MarkDoneAll(ctx, tx, ctxs[1:])
	if err != nil {
		t.Fatalf("MarkDoneAll: %v", err)
	}
	if want := []bool{true, true, false}; len(marked) != 3 || marked[0] != want[0] || marked[1] != want[1] || marked[2] != want[2] {
		t.Errorf("MarkDoneAll: got %v, want %v (the repeated identity's first mark counts)", marked, want)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range append([]string{one}, all...) {
		if done, err := s.IsDone(ctx, id); err != nil || !done {
			t.Errorf("IsDone(%q) after the transaction: got %v, %v, want true", id, done, err)
		}
	}
}

// TestRefusedDataIsDeadLettered: an error by which the database refuses
// the data of a call (SQLSTATE class 22; here a key column too narrow for
// the identity) fails the same way on every redelivery: it is class
// validation, and the dlq dead-letters the message with the reason at
// once instead of deferring it for ever as an outage.
func TestRefusedDataIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	table := brokertest.Fresh(t, "levee_dedup_narrow", func(name string) error {
		_, err := p.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		return err
	})
	if _, err := p.Exec(ctx, "CREATE TABLE "+pgx.Identifier{table}.Sanitize()+
		" (key varchar(8) PRIMARY KEY, token bigint NOT NULL, done boolean NOT NULL, until timestamptz NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	s, err := pgdedup.New(ctx, p, pgdedup.WithTable(table), pgdedup.WithoutMigrate(), pgdedup.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Claim(ctx, "longer than eight", 1, time.Second)
	if got := levee.ClassOf(err); err == nil || got != levee.ClassValidation {
		t.Fatalf("claim of a key the column refuses: got %v (class %q), want class validation", err, got)
	}

	d, err := dedup.New(dedup.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	var letters capture
	r, err := dlq.New(&letters, dlq.WithTopic("t.dlq"), dlq.WithMaxAttempts(3))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := middleware.NewStack().DLQ(r.Middleware).Dedup(d.Middleware).Middleware(func(*message.Message) ([]*message.Message, error) {
		calls++
		return nil, nil
	})
	if _, err := h(message.NewMessage("longer than eight", nil)); err != nil {
		t.Fatalf("got %v, want nil (dead-lettered, then acked)", err)
	}
	if calls != 0 || len(letters.msgs) != 1 {
		t.Fatalf("got %d handler calls and %d dead letters, want 0 and 1", calls, len(letters.msgs))
	}
	l := letters.msgs[0]
	if got := l.Metadata.Get(dlq.KeyErrorClass); got != string(levee.ClassValidation) {
		t.Errorf("dead letter class: got %q, want validation", got)
	}
	if got := l.Metadata.Get(dlq.KeyError); !strings.Contains(got, "22001") {
		t.Errorf("dead letter reason: got %q, want the database's error (SQLSTATE 22001)", got)
	}
	// A real outage is still deferred.
	p2 := pool(t)
	s2, err := pgdedup.New(ctx, p2, pgdedup.WithTable(table), pgdedup.WithoutMigrate(), pgdedup.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	p2.Close()
	d2, err := dedup.New(dedup.WithStore(s2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d2.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })(message.NewMessage("short", nil))
	if !levee.IsDeferral(err) || !errors.Is(err, dedup.ErrStore) {
		t.Errorf("closed pool: got %v, want a deferral wrapping ErrStore", err)
	}
}

// capture is a publisher that keeps what it is given (one goroutine).
type capture struct{ msgs []*message.Message }

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}
func (c *capture) Close() error { return nil }
