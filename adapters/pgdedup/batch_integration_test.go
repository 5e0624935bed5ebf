//go:build integration

package pgdedup_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// letters is a DLQ publisher that keeps the UUIDs it was given.
type letters struct {
	mu  sync.Mutex
	ids []string
}

func (l *letters) Publish(_ string, msgs ...*message.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		l.ids = append(l.ids, m.UUID)
	}
	return nil
}

func (*letters) Close() error { return nil }

// TestBatchMarksInItsTransaction: the exactly-once pattern of
// docs/DEDUP.md with a Batcher behind recover, dlq and dedup on the
// PostgreSQL inbox. The batch func marks its messages with MarkDoneAll and
// writes the marked ones' rows in one transaction, fails one message by
// name (it marks and writes nothing for it) and panics on another after
// marking, before the commit (the transaction rolls back; the batcher
// splits and reruns). Each good message has one row and one done mark;
// the failed one and the poison have neither and are dead-lettered; a
// redelivery of a good message is acked without running the func.
func TestBatchMarksInItsTransaction(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	s := inbox(t, p)
	fx := effectsTable(t, p)
	var mu sync.Mutex
	runs := map[string]int{}
	b, err := batch.New(func(bctx context.Context, msgs []*message.Message) error {
		tx, err := p.Begin(bctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		var ctxs []context.Context
		var keep []*message.Message
		failed := &batch.Errors{}
		for _, m := range msgs {
			mu.Lock()
			runs[m.UUID]++
			mu.Unlock()
			if m.UUID == "bad" {
				failed.FailUUID(m.UUID, errors.New("violates check constraint"))
				continue
			}
			ctxs, keep = append(ctxs, m.Context()), append(keep, m)
		}
		marked, err := s.MarkDoneAll(bctx, tx, ctxs)
		if err != nil {
			return err
		}
		for i, m := range keep {
			if !marked[i] {
				continue
			}
			if _, err := tx.Exec(bctx, "INSERT INTO "+fx+" (key) VALUES ($1)", m.UUID); err != nil {
				return err
			}
			if m.UUID == "poison" {
				panic("poison payload")
			}
		}
		if err := tx.Commit(bctx); err != nil {
			return err
		}
		if len(failed.ByUUID) > 0 {
			return failed
		}
		return nil
	}, batch.WithMaxSize(4), batch.WithMaxWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	pub := &letters{}
	d, err := dlq.New(pub, dlq.WithTopic("orders.dlq"), dlq.WithMaxHold(5*time.Second),
		dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 2, MaxAttempts: 2}))
	if err != nil {
		t.Fatal(err)
	}
	dd, err := dedup.New(dedup.WithStore(s), dedup.WithLease(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	h := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Dedup(dd.Middleware).Middleware(b.Handler)
	deliver := func(ids ...string) {
		t.Helper()
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				if _, err := h(message.NewMessage(id, nil)); err != nil {
					t.Errorf("%s: got %v, want acked (written or dead-lettered)", id, err)
				}
			})
		}
		wg.Wait()
	}
	deliver("a", "bad", "b", "poison")
	slices.Sort(pub.ids)
	if !slices.Equal(pub.ids, []string{"bad", "poison"}) {
		t.Errorf("dead letters: got %v, want bad and poison", pub.ids)
	}
	mu.Lock()
	before := map[string]int{"a": runs["a"], "b": runs["b"]}
	mu.Unlock()
	deliver("a", "b")
	mu.Lock()
	if runs["a"] != before["a"] || runs["b"] != before["b"] {
		t.Errorf("redelivered a and b ran again: %d and %d calls, %d and %d before", runs["a"], runs["b"], before["a"], before["b"])
	}
	mu.Unlock()
	for id, want := range map[string]struct {
		rows int
		done bool
	}{"a": {1, true}, "b": {1, true}, "bad": {0, false}, "poison": {0, false}} {
		var n int
		if err := p.QueryRow(ctx, "SELECT count(*) FROM "+fx+" WHERE key = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		done, err := s.IsDone(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n != want.rows || done != want.done {
			t.Errorf("%s: %d rows, done %v; want %d, %v", id, n, done, want.rows, want.done)
		}
	}
}
