package fleet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestKeyedCloseOnAStalledStore: closing a per-key fleet limit whose keys
// hold tokens while the store hangs takes one store timeout, not one per
// key. Before, Close gave each key's tokens back one key after another,
// so a replica with 1000 keys shut down for 1000 x 50ms = 50s while Redis
// stalled.
func TestKeyedCloseOnAStalledStore(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		const keys = 100
		k := fleet.NewKeyed(fleet.PoolConfig{Store: s, Key: "k", Member: "a", Rate: 100}, keys)
		for i := range keys {
			// each key's first lease is a full one (20 tokens): it holds 19
			if !k.Pool(fmt.Sprint(i)).Take(context.Background(), 0, true).OK() {
				t.Fatalf("key %d not admitted", i)
			}
		}
		s.SetHang(true)
		t0 := time.Now()
		_ = k.Close()
		if got, want := time.Since(t0), 2*fleet.DefaultStoreTimeout; got > want {
			t.Errorf("Close of %d keys took %v on a stalled store, want at most %v (one store timeout)", keys, got, want)
		}
	})
}
