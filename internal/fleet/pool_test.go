package fleet_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

func newPool(t *testing.T, s fleet.LeaseStore, member string, rate float64, mode fleet.OnStoreError) *fleet.Pool {
	t.Helper()
	p, err := fleet.NewPool(fleet.PoolConfig{Store: s, Key: "k", Member: member, Rate: rate, OnError: mode})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Three replicas saturating one fleet limit admit rate x time + one burst
// between them, with a handful of store calls per second each.
func TestPoolsShareTheFleetRate(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		const rate = 1000
		var admitted atomic.Int64
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for i := range 3 {
			p := newPool(t, s, string(rune('a'+i)), rate, fleet.Local)
			defer p.Close()
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for p.Take(ctx, 0, true).OK() {
						admitted.Add(1)
						time.Sleep(time.Millisecond) // the handler's work
					}
				}()
			}
		}
		wg.Wait()
		got := admitted.Load()
		t.Logf("admitted %d, store calls %d", got, s.CallCount())
		// burst: one lease (rate x 200ms) at the start.
		if lo, hi := int64(rate*5*0.97), int64(rate*5+rate/5); got < lo || got > hi {
			t.Errorf("admitted %d in 5s at %d/s, want within [%d, %d]", got, rate, lo, hi)
		}
		if calls := s.CallCount(); calls > 3*20*5 {
			t.Errorf("%d store calls for %d messages, want at most %d", calls, got, 3*20*5)
		}
	})
}

// A replica with low demand asks for small leases: the lease follows its
// share of the demand, and unspent tokens go back when it idles.
func TestPoolLeaseFollowsDemandAndExpires(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		p := newPool(t, s, "a", 10000, fleet.Local)
		defer p.Close()
		ctx := context.Background()
		for range 100 { // 50/s for 2s
			if !p.Take(ctx, 0, true).OK() {
				t.Fatal("not admitted")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if held := p.Held(); held > 50 {
			t.Errorf("holds %d tokens at 50/s demand, want at most 50/s x 200ms x 5", held)
		}
		testkit.Advance(time.Second)
		if held := p.Held(); held != 0 {
			t.Errorf("holds %d tokens after idling 1s, want 0 (given back)", held)
		}
	})
}

var errDown = errors.New("store down")

func TestPoolOnStoreError(t *testing.T) {
	for _, tt := range []struct {
		mode fleet.OnStoreError
		want fleet.Status
		// maxWait: FailClosed waits for the store as for a lease, up to
		// it (TestPoolFailClosedWaits); the others answer within the
		// store timeout.
		maxWait time.Duration
	}{
		{fleet.FailOpen, fleet.Bypass, 0},
		{fleet.FailClosed, fleet.Limited, time.Second},
		{fleet.Local, fleet.Granted, 0},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				s := fleet.NewMemStore()
				s.SetErr(errDown)
				p := newPool(t, s, "a", 100, tt.mode)
				defer p.Close()
				start := time.Now()
				r := p.Take(context.Background(), tt.maxWait, true)
				if r.Status != tt.want {
					t.Errorf("status %d, want %d", r.Status, tt.want)
				}
				if !p.Degraded() {
					t.Error("not degraded")
				}
				if d := time.Since(start); d > max(tt.maxWait, fleet.DefaultStoreTimeout) {
					t.Errorf("took %s, want at most %s", d, max(tt.maxWait, fleet.DefaultStoreTimeout))
				}
				s.SetErr(nil)
				testkit.Advance(time.Second)
				if p.Degraded() {
					t.Error("still degraded after the store came back")
				}
			})
		})
	}
}

// TestPoolFailClosedWaits: with FailClosed a caller that waits waits for
// the store to answer, as for a lease, within its max wait. It was
// Limited at once, a deferral that a transport without native delay
// redelivers at once: a Nack storm for as long as the store was down
// (about 7,800 deliveries a second of 10 messages over RabbitMQ).
func TestPoolFailClosedWaits(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		s.SetErr(errDown)
		p := newPool(t, s, "a", 100, fleet.FailClosed)
		defer p.Close()
		start := time.Now()
		if r := p.Take(context.Background(), 2*time.Second, true); r.Status != fleet.Limited || r.RetryAfter <= 0 {
			t.Errorf("store down past the max wait: %+v, want Limited with a RetryAfter", r)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("returned after %s, want the max wait, 2s", d)
		}
		if !p.Degraded() {
			t.Error("not degraded")
		}
		go func() {
			time.Sleep(700 * time.Millisecond)
			s.SetErr(nil)
		}()
		start = time.Now()
		if r := p.Take(context.Background(), 5*time.Second, true); r.Status != fleet.Granted {
			t.Errorf("store back within the max wait: %+v, want Granted", r)
		}
		if d := time.Since(start); d < 700*time.Millisecond || d > 700*time.Millisecond+fleet.DefaultPeriod {
			t.Errorf("granted after %s, want once the store answers: 700ms plus at most one lease period", d)
		}
		if p.Degraded() {
			t.Error("still degraded after a lease")
		}
		s.SetErr(errDown)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		for p.TryTake() {
		}
		if r := p.Take(ctx, 0, true); r.Status != fleet.Canceled {
			t.Errorf("context ended while the store is down: %+v, want Canceled", r)
		}
	})
}

// A store that hangs adds at most the store timeout to a message.
func TestPoolSlowStoreBoundsLatency(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		s.SetHang(true)
		p, err := fleet.NewPool(fleet.PoolConfig{Store: s, Key: "k", Member: "a", Rate: 100,
			StoreTimeout: 30 * time.Millisecond, OnError: fleet.FailOpen})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		start := time.Now()
		if r := p.Take(context.Background(), 0, true); r.Status != fleet.Bypass {
			t.Fatalf("status %d, want Bypass", r.Status)
		}
		if d := time.Since(start); d != 30*time.Millisecond {
			t.Errorf("waited %s, want the store timeout (30ms)", d)
		}
	})
}

func TestKeyedIsBounded(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		k := fleet.NewKeyed(fleet.PoolConfig{Store: fleet.NewMemStore(), Key: "k", Member: "a", Rate: 10}, 3)
		defer k.Close()
		for _, key := range []string{"a", "b", "c", "d", "e"} {
			if k.Pool(key) == nil {
				t.Fatal("nil pool")
			}
			time.Sleep(time.Millisecond)
		}
		if n := k.Len(); n != 3 {
			t.Errorf("%d live keys, want 3", n)
		}
	})
}

// TestKeyedKeepsHeldKeys: a key a caller holds (a message waiting for its
// token) is never evicted; a new key when every key is held gets the
// fallback Pool (key ""), and a key is evicted once no one holds it.
func TestKeyedKeepsHeldKeys(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		k := fleet.NewKeyed(fleet.PoolConfig{Store: fleet.NewMemStore(), Key: "k", Member: "a", Rate: 10}, 1)
		defer k.Close()
		a, over := k.Acquire("a")
		if a == nil || over {
			t.Fatalf("a: got %v, overflow %v", a, over)
		}
		b, over := k.Acquire("b")
		if b == nil || !over {
			t.Fatalf("b while a is held: got overflow %v, want the fallback pool", over)
		}
		if fb, _ := k.Acquire(""); fb != b {
			t.Errorf("the overflow pool is not the fallback key's")
		}
		if n := k.Len(); n != 1 {
			t.Errorf("%d live keys, want 1 (a; the fallback is not counted)", n)
		}
		k.Release(a)
		c, over := k.Acquire("c")
		if c == nil || over || c == a {
			t.Fatalf("c after a was released: overflow %v, want a new pool in a's place", over)
		}
		if p, _ := k.Acquire("a"); p == a {
			t.Errorf("a was not evicted for c")
		}
	})
}

// SetRate while the store fails moves the local share at once (a fleet
// breaker's drain ramp goes on without the store); before, the share
// stayed at the rate of the moment the store failed.
func TestPoolSetRateWhileDegraded(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		s.SetErr(errDown)
		p := newPool(t, s, "a", 10, fleet.Local)
		defer p.Close()
		ctx := context.Background()
		if r := p.Take(ctx, 0, true); r.Status != fleet.Granted || !p.Degraded() {
			t.Fatalf("status %d, degraded %v; want granted by the local share", r.Status, p.Degraded())
		}
		p.SetRate(1000)
		start, n := time.Now(), 0
		for time.Since(start) < 100*time.Millisecond {
			if r := p.Take(ctx, 0, true); r.Status != fleet.Granted {
				t.Fatalf("status %d, want granted", r.Status)
			}
			n++
		}
		if n < 50 {
			t.Errorf("%d taken in 100ms at rate 1000/s while degraded, want about 100 (the new rate), not 1 (the old one)", n)
		}
	})
}

// slowGiveBack is a store whose give-backs (a negative N) hang until the
// store timeout: a Redis that stopped answering.
type slowGiveBack struct{ fleet.LeaseStore }

func (s slowGiveBack) Lease(ctx context.Context, r fleet.LeaseRequest) (fleet.Lease, error) {
	if r.N < 0 {
		<-ctx.Done()
		return fleet.Lease{}, ctx.Err()
	}
	return s.LeaseStore.Lease(ctx, r)
}

// Evicting a key to make room for a new one does not wait for the evicted
// pool to give its tokens back: the message that brought the new key
// waits for its own token only. Before, it waited for the store call
// (up to the store timeout, 50ms by default) under key churn.
func TestKeyedEvictionDoesNotWaitForTheStore(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		k := fleet.NewKeyed(fleet.PoolConfig{Store: slowGiveBack{fleet.NewMemStore()}, Key: "k", Member: "a", Rate: 100}, 1)
		defer k.Close()
		a, _ := k.Acquire("a")
		if r := a.Pool().Take(context.Background(), 0, true); r.Status != fleet.Granted {
			t.Fatalf("a's token: status %d", r.Status)
		}
		k.Release(a) // a holds leased tokens it gives back when closed
		start := time.Now()
		b, over := k.Acquire("b")
		if b == nil || over {
			t.Fatalf("b: got %v, overflow %v", b, over)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Acquire of a new key waited %v for the evicted key's store call, want 0", waited)
		}
		k.Release(b)
	})
}
