package breaker_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

// TestRouterOutage runs a breaker in a Watermill router over GoChannel: a
// 5s downstream outage produces a handful of Nacks (the trip and the
// probes), no redelivery storm, and every message is processed once the
// downstream is back.
func TestRouterOutage(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const n, outage, openFor = 200, 5 * time.Second, time.Second
		b := mustNew(t, breaker.WithName("payments"), breaker.WithConsecutiveFailures(3), breaker.WithOpenFor(openFor),
			breaker.WithDrain(2*time.Second, 0.1, 1), breaker.WithDrainRate(100))
		start := time.Now()
		var calls atomic.Int64
		handler := func(*message.Message) error {
			calls.Add(1)
			time.Sleep(time.Millisecond)
			if time.Since(start) < outage {
				return errDown
			}
			return nil
		}
		h := testkit.New(t)
		h.Handle("payments", "orders", handler, middleware.Recover, b.Middleware)
		h.Start()
		h.PublishN("orders", n, nil)
		c := h.WaitSettled(n, time.Minute)
		if c.Acked != n {
			t.Fatalf("acked: got %d, want %d (%s)", c.Acked, n, c)
		}
		// GoChannel hands every message to the router at once, so all n are
		// in flight when the outage starts: each fails once before the trip,
		// then waits; during the outage only one probe per open period runs.
		maxNacks := n + int(outage/openFor) + 1
		if c.Nacked > maxNacks {
			t.Fatalf("nacks during the outage: got %d, want at most %d (%s)", c.Nacked, maxNacks, c)
		}
		if got := calls.Load(); got != int64(n+c.Nacked) {
			t.Fatalf("handler calls: got %d, want %d (every message once, plus the failed calls)", got, n+c.Nacked)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRouterMaxHold: with a max hold H, an outage T and k messages in
// flight, redeliveries stay within k×T/H (plus the trip and the probes), and
// nothing is lost.
func TestRouterMaxHold(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const n, outage, hold, openFor = 20, 6 * time.Second, time.Second, 2 * time.Second
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor), breaker.WithMaxHold(hold))
		start := time.Now()
		handler := func(*message.Message) error {
			if time.Since(start) < outage {
				return errDown
			}
			return nil
		}
		h := testkit.New(t)
		h.Handle("payments", "orders", handler, b.Middleware)
		h.Start()
		h.PublishN("orders", n, nil)
		c := h.WaitSettled(n, time.Minute)
		if c.Acked != n {
			t.Fatalf("acked: got %d, want %d (%s)", c.Acked, n, c)
		}
		// Failures before the trip: at most n (all in flight); probes: one per
		// open period; max-hold Nacks: n per hold.
		limit := n + int(outage/openFor) + 1 + n*int(outage/hold)
		if c.Nacked > limit {
			t.Fatalf("nacks: got %d, want at most %d (%s)", c.Nacked, limit, c)
		}
		if c.Nacked < n*int(outage/hold)/2 {
			t.Fatalf("nacks: got %d, want the max hold to have Nacked waiting messages (%s)", c.Nacked, c)
		}
		t.Logf("%s", c)
	})
}
