package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

func keyedMsg(customer string) *message.Message {
	m := message.NewMessage("id-"+customer, nil)
	if customer != "" {
		m.Metadata.Set("customer_id", customer)
	}
	return m
}

// admitted runs h on n messages for each key and returns how many were
// admitted per key (reject mode).
func admitted(t *testing.T, h message.HandlerFunc, keys []string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		for _, k := range keys {
			if _, err := h(keyedMsg(k)); err == nil {
				got[k]++
			} else if !errors.Is(err, ErrLimited) {
				t.Fatalf("key %q: %v", k, err)
			}
		}
	}
	return got
}

func noop(*message.Message) ([]*message.Message, error) { return nil, nil }

func TestPerKeyIsolation(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithMode(ModeReject), WithKeyMetadata("customer_id"),
			WithPerKey(10, 2), WithKeyOverride("vip", 10, 5), WithKeyOverride(FallbackKey, 10, 1))
		h := l.Middleware(noop)
		got := admitted(t, h, []string{"alice", "bob", "vip", ""}, 10)
		want := map[string]int{"alice": 2, "bob": 2, "vip": 5, "": 1}
		for k, w := range want {
			if got[k] != w {
				t.Fatalf("key %q admitted %d, want %d (all: %v)", k, got[k], w, got)
			}
		}
		// Exhausting alice does not slow bob: after 100ms each has 1 more.
		time.Sleep(100 * time.Millisecond)
		got = admitted(t, h, []string{"alice", "bob"}, 3)
		if got["alice"] != 1 || got["bob"] != 1 {
			t.Fatalf("after 100ms got %v, want 1 each", got)
		}
		if got := l.Keys(); got != 3 {
			t.Fatalf("Keys %d, want 3 (fallback not counted)", got)
		}
	})
}

func TestPerKeyWaitsIndependently(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		// Global 1000/s, per key 10/s: a slow key must not hold up others
		// beyond the global schedule.
		l := mustNew(t, WithRate(1000), WithKeyMetadata("customer_id"), WithPerKey(10, 1))
		h := l.Middleware(noop)
		done := make(chan time.Duration, 2)
		start := time.Now()
		go func() {
			for i := 0; i < 3; i++ { // alice: 0, 100, 200ms
				_, _ = h(keyedMsg("alice"))
			}
			done <- time.Since(start)
		}()
		go func() {
			_, _ = h(keyedMsg("bob"))
			done <- time.Since(start)
		}()
		a, b := <-done, <-done
		if a < b {
			a, b = b, a
		}
		if a != 200*time.Millisecond || b > time.Millisecond {
			t.Fatalf("alice took %v (want 200ms), bob %v (want <= 1ms)", a, b)
		}
	})
}

func TestPerKeyGlobalRejectGivesKeyTokenBack(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithMode(ModeReject), WithRate(1), WithKeyMetadata("customer_id"), WithPerKey(1, 1))
		h := l.Middleware(noop)
		if _, err := h(keyedMsg("a")); err != nil {
			t.Fatal(err)
		}
		// Global bucket empty: b's key token is taken and given back.
		if _, err := h(keyedMsg("b")); !errors.Is(err, ErrLimited) {
			t.Fatalf("got %v", err)
		}
		time.Sleep(time.Second)
		if _, err := h(keyedMsg("b")); err != nil {
			t.Fatalf("b after 1s: %v (its key token was lost)", err)
		}
	})
}

func TestPerKeyExpiry(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithMode(ModeReject), WithKeyMetadata("customer_id"),
			WithPerKey(1, 1), WithKeyIdle(time.Minute))
		h := l.Middleware(noop)
		admitted(t, h, []string{"a", "b", "c"}, 1)
		if got := l.Keys(); got != 3 {
			t.Fatalf("Keys %d, want 3", got)
		}
		time.Sleep(30 * time.Second)
		admitted(t, h, []string{"c"}, 1) // c stays fresh
		time.Sleep(31 * time.Second)
		// a and b are idle for 61s and at rest: the next lookups drop them.
		admitted(t, h, []string{"d"}, 1)
		if got := l.Keys(); got != 2 {
			t.Fatalf("Keys %d after expiry, want 2 (c, d)", got)
		}
	})
}

func TestPerKeyBoundedKeys(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithMode(ModeReject), WithKeyMetadata("customer_id"),
			WithPerKey(1, 1), WithMaxKeys(2), WithKeyOverride(FallbackKey, 1, 1))
		h := l.Middleware(noop)
		// a and b take their tokens: not at rest, cannot be dropped.
		got := admitted(t, h, []string{"a", "b", "c", "d"}, 1)
		// c overflows to the fallback bucket (1 token), d finds it empty.
		if got["a"] != 1 || got["b"] != 1 || got["c"]+got["d"] != 1 || l.Keys() != 2 {
			t.Fatalf("got %v keys=%d", got, l.Keys())
		}
		// After 1s a is full again (at rest) and is dropped for e.
		time.Sleep(time.Second)
		got = admitted(t, h, []string{"e"}, 1)
		if got["e"] != 1 || l.Keys() != 2 {
			t.Fatalf("after refill got %v keys=%d", got, l.Keys())
		}
	})
}

func TestKeyFuncFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   KeyFunc
		why  fallbackReason
	}{
		{"panic", func(*message.Message) string { panic("boom") }, fbPanic},
		{"empty", func(*message.Message) string { return "" }, fbMissing},
		{"too long", func(*message.Message) string { return string(make([]byte, MaxKeyLen+1)) }, fbInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, WithMode(ModeReject), WithKeyFunc(tc.fn), WithPerKey(1, 2))
			key, why, _ := l.keys.keyOf(keyedMsg("x"))
			if key != FallbackKey || why != tc.why {
				t.Fatalf("got key %q reason %v, want fallback %v", key, why, tc.why)
			}
			h := l.Middleware(noop)
			got := admitted(t, h, []string{"x"}, 3)
			if got["x"] != 2 {
				t.Fatalf("admitted %d, want the fallback burst of 2", got["x"])
			}
		})
	}
}

func TestWaitKey(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithKeyFunc(func(m *message.Message) string { return m.UUID }), WithPerKey(2, 1))
		start := time.Now()
		for i := 0; i < 3; i++ {
			if err := l.WaitKey(context.Background(), "k"); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("3 permits at 2/s took %v, want 1s", got)
		}
		_ = l.Close()
		if err := l.WaitKey(context.Background(), "z"); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// TestPerKeyStress churns keys through a small bound with immediate idle
// expiry from 8 goroutines in real time under -race: no panic, no leak of
// live keys beyond the bound, and Close ends everything.
func TestPerKeyStress(t *testing.T) {
	l := mustNew(t, WithRate(1e6), WithKeyFunc(func(m *message.Message) string { return m.UUID }),
		WithPerKey(1e4, 2), WithMaxKeys(16), WithKeyIdle(0), WithMaxWait(10*time.Millisecond))
	h := l.Middleware(noop)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				_, err := h(message.NewMessage(strconv.Itoa(i%64), nil))
				if err != nil && !errors.Is(err, ErrLimited) {
					t.Errorf("handler: %v", err)
					return
				}
				if n := l.Keys(); n > 16 {
					t.Errorf("%d live keys, bound 16", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	_ = l.Close()
}
