package dedup_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
)

// lossyStore is a MemStore whose next calls take effect but whose answers
// are lost (a deadline passed on the way back): what a store that hangs
// and recovers does to a call in flight.
type lossyStore struct {
	*dedup.MemStore
	loseClaims, loseReleases atomic.Int32
	claims                   atomic.Int32
}

var errLost = errors.New("reply lost: context deadline exceeded")

func (s *lossyStore) Claim(ctx context.Context, key string, token uint64, lease time.Duration) (dedup.Claim, error) {
	s.claims.Add(1)
	c, err := s.MemStore.Claim(ctx, key, token, lease)
	if s.loseClaims.Add(-1) >= 0 {
		return dedup.Claim{}, errLost
	}
	return c, err
}

func (s *lossyStore) Release(ctx context.Context, key string, token uint64) error {
	if s.loseReleases.Add(-1) >= 0 {
		return errLost
	}
	return s.MemStore.Release(ctx, key, token)
}

// TestLostClaimDoesNotHoldTheIdentity: a claim that reached the store but
// whose answer was lost holds the identity with no delivery behind it.
// Before, every redelivery was deferred as in progress elsewhere until
// the lease ended (30s by default) after the store was back; now the
// process that lost the answer releases that claim before it claims the
// identity again, and the redelivery runs at once. The same for a
// release that failed after the handler failed: the dlq's in-process
// retry no longer waits out the lease. While that release fails, the
// message is deferred without a claim (one store timeout, not two).
func TestLostClaimDoesNotHoldTheIdentity(t *testing.T) {
	mem, err := dedup.NewMemStore(10)
	if err != nil {
		t.Fatal(err)
	}
	s := &lossyStore{MemStore: mem}
	runs := 0
	h := newDedup(t, dedup.WithStore(s), dedup.WithLease(time.Hour)).Middleware(func(*message.Message) ([]*message.Message, error) {
		if runs++; runs == 1 {
			s.loseReleases.Store(1) // the release after this failure is lost
			return nil, errors.New("downstream down")
		}
		return nil, nil
	})

	s.loseClaims.Store(1)
	_, err = h(msg("m1", ""))
	if _, ok := levee.AsDeferral(err); !ok || !errors.Is(err, dedup.ErrStore) {
		t.Fatalf("claim answer lost: got %v, want a deferral wrapping ErrStore", err)
	}
	s.loseReleases.Store(1)
	_, err = h(msg("m1", ""))
	if _, ok := levee.AsDeferral(err); !ok || !errors.Is(err, dedup.ErrStore) {
		t.Fatalf("the lost claim's release failing: got %v, want a deferral wrapping ErrStore", err)
	}
	if got := s.claims.Load(); got != 1 {
		t.Errorf("claims after a failed release: got %d, want 1 (no claim after it)", got)
	}
	if _, err := h(msg("m1", "")); err == nil || errors.Is(err, dedup.ErrInProgress) {
		t.Fatalf("redelivery: got %v, want the handler's error (it ran)", err)
	}
	if _, err := h(msg("m1", "")); err != nil {
		t.Fatalf("retry after a failed release: got %v, want nil (it ran)", err)
	}
	if got := runs; got != 2 {
		t.Errorf("handler runs: got %d, want 2", got)
	}
}
