package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// hangStore answers from a MemStore until hang is closed; then each call
// waits for its context (a store that stopped answering).
type hangStore struct {
	*fleet.MemStore
	hang chan struct{}
}

func (s *hangStore) Lease(ctx context.Context, r fleet.LeaseRequest) (fleet.Lease, error) {
	select {
	case <-s.hang:
		<-ctx.Done()
		return fleet.Lease{}, ctx.Err()
	default:
	}
	return s.MemStore.Lease(ctx, r)
}

// TestFleetPerKeyStallAddsOneStoreTimeout: a message of a new key, when
// the fleet's tokens are spent and the store stops answering, waits one
// store timeout (docs/FLEET.md: a slow or unreachable store adds at most
// store_timeout to a message), not one for its key's store call and then
// one for the fleet's. Before, it waited 100ms with the default 50ms.
func TestFleetPerKeyStallAddsOneStoreTimeout(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := &hangStore{MemStore: fleet.NewMemStore(), hang: make(chan struct{})}
		l := mustNew(t, WithMaxWait(time.Minute), WithFleet(Fleet{Store: s, Key: "payments", Rate: 1000,
			PerKeyRate: 100, PerKeyMetadata: "customer_id"}))
		defer l.Close()
		h := l.Middleware(noop)
		m := message.NewMessage("0", nil)
		m.Metadata.Set("customer_id", "a")
		if _, err := h(m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // idle: the replica gives its tokens back
		if held := l.FleetHeld(); held != 0 {
			t.Fatalf("holds %d fleet tokens after idling, want 0", held)
		}
		close(s.hang)
		m = message.NewMessage("1", nil)
		m.Metadata.Set("customer_id", "b")
		t0 := time.Now()
		if _, err := h(m); err != nil {
			t.Fatalf("on_store_error local: %v", err)
		}
		if got, want := time.Since(t0), fleet.DefaultStoreTimeout; got > want {
			t.Errorf("a new key's message waited %v on a stalled store, want at most the store timeout, %v", got, want)
		}
	})
}
