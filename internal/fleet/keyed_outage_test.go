package fleet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestKeyedOutageProbesOncePerPeriod: while the store of a per-key limit
// fails, its keys ask it at most once per lease period between them, not
// once per key: a thousand keys asked a failing store 5,000 times a
// second (one per key per 200 ms period), a load that keeps a struggling
// Redis down. A new key during the outage goes straight to the
// on_store_error mode, and once the store answers every key ends its
// outage within a couple of periods.
func TestKeyedOutageProbesOncePerPeriod(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		const keys = 1000
		k := fleet.NewKeyed(fleet.PoolConfig{Store: s, Key: "k", Member: "a", Rate: 10_000, OnError: fleet.Local}, 2*keys)
		defer k.Close()
		take := func(key string) {
			e, _ := k.Acquire(key)
			if e == nil {
				t.Fatal("closed")
			}
			defer k.Release(e)
			if !e.Pool().Take(context.Background(), 0, true).OK() {
				t.Fatalf("key %s not admitted", key)
			}
		}
		for i := range keys {
			take(fmt.Sprint(i))
		}
		testkit.Advance(time.Second)
		s.SetErr(errDown)
		for i := range keys { // each key spends while the store fails
			take(fmt.Sprint(i))
		}
		take("new") // a new key during the outage
		testkit.Advance(fleet.DefaultPeriod)
		before := s.CallCount()
		const periods = 10
		testkit.Advance(periods * fleet.DefaultPeriod)
		if calls := s.CallCount() - before; calls > 2*periods {
			t.Errorf("%d store calls in %d lease periods of an outage with %d idle keys, want at most %d (one per period for the limit)",
				calls, periods, keys, 2*periods)
		}
		s.SetErr(nil)
		testkit.Advance(3 * fleet.DefaultPeriod)
		degraded := 0
		for i := range keys {
			if k.Pool(fmt.Sprint(i)).Degraded() {
				degraded++
			}
		}
		if degraded > 0 {
			t.Errorf("%d of %d keys still degraded 3 periods after the store came back", degraded, keys)
		}
	})
}
