package dedup_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
)

// ctxStore answers as a networked store does once the caller's context
// has ended: with the context's error.
type ctxStore struct{ failingStore }

func (ctxStore) Claim(ctx context.Context, _ string, _ uint64, _ time.Duration) (dedup.Claim, error) {
	if err := ctx.Err(); err != nil {
		return dedup.Claim{}, err
	}
	return dedup.Claim{Status: dedup.StatusClaimed}, nil
}

// TestClaimAtShutdownIsNoStoreError: a delivery whose context has ended
// (the router shutting down) before its claim is handed back with the
// context's error, as the other layers do, not deferred as a store outage
// and counted in levee.dedup.store.errors: the store did nothing wrong.
func TestClaimAtShutdownIsNoStoreError(t *testing.T) {
	var c counter
	d := newDedup(t, dedup.WithStore(ctxStore{}))
	m := msg("a", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.SetContext(ctx)
	_, err := d.Middleware(c.handle)(m)
	if !errors.Is(err, context.Canceled) || errors.Is(err, dedup.ErrStore) || levee.IsDeferral(err) {
		t.Errorf("got %v, want context.Canceled, not a deferral wrapping ErrStore", err)
	}
	if got := d.Stats().StoreErrors; got != 0 {
		t.Errorf("store errors: got %d, want 0", got)
	}
	if c.count() != 0 {
		t.Error("the handler ran without a claim")
	}
}
