package ratelimit

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestFleetPerKeyStallAddsOneStoreTimeout: a message of a new key, when
// the fleet's tokens are spent and the store stops answering, waits one
// store timeout (docs/FLEET.md: a slow or unreachable store adds at most
// store_timeout to a message), not one for its key's store call and then
// one for the fleet's. Before, it waited 100ms with the default 50ms.
func TestFleetPerKeyStallAddsOneStoreTimeout(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
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
		s.SetHang(true)
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
