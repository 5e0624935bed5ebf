//go:build integration

package pgdedup_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
)

// TestLockedKeyDefersOnlyItsMessage: a store that fails for one key only
// (another session holds that row's lock, so its claim runs into the
// store timeout) defers that key's message, never dead-letters or acks
// it, while other keys run; once the lock is gone the message runs, and
// the claim cancelled at the timeout left nothing that holds it.
func TestLockedKeyDefersOnlyItsMessage(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	s := inbox(t, p)
	d, err := dedup.New(dedup.WithStore(s), dedup.WithStoreTimeout(300*time.Millisecond), dedup.WithLease(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	h := d.Middleware(func(m *message.Message) ([]*message.Message, error) { runs[m.UUID]++; return nil, nil })
	// A row for "locked" (a done mark whose window ended), locked by a
	// transaction left open.
	if err := s.Done(ctx, "locked", 1, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM "+s.Table()+" WHERE key = 'locked' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	_, err = h(message.NewMessage("locked", nil))
	if _, ok := levee.AsDeferral(err); !ok || !errors.Is(err, dedup.ErrStore) {
		t.Fatalf("locked key: got %v, want a deferral wrapping ErrStore", err)
	}
	if _, err := h(message.NewMessage("free", nil)); err != nil {
		t.Fatalf("another key: got %v, want nil", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h(message.NewMessage("locked", nil)); err != nil {
		t.Fatalf("locked key after the lock: got %v, want nil", err)
	}
	if runs["locked"] != 1 || runs["free"] != 1 {
		t.Errorf("runs: got %v, want locked 1, free 1", runs)
	}
}
