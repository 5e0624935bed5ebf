package breaker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// In half-open any failing probe opens the breaker again, a message that
// failed before included: a downstream still down must not let retried
// messages through to burn their attempts.
func TestHalfOpenProbeOfARepeatedMessageReopens(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(2), breaker.WithOpenFor(time.Second))
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		m1 := newMsg()
		_, _ = h(m1)
		_, _ = h(newMsg())
		wantState(t, b, breaker.StateOpen)
		testkit.Advance(time.Second + time.Millisecond)
		wantState(t, b, breaker.StateHalfOpen)
		_, _ = h(m1)
		wantState(t, b, breaker.StateOpen)
	})
}

// The fleet breaker counts like the local one: a permanent or validation
// error is the message's fault and not counted.
func TestFleetBreakerDoesNotCountPermanentErrors(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b := newFleet(t, s, "a", 0)
		defer b.Close()
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		d.err = classErr{"permanent"}
		for range 20 {
			_, _ = h(newMsg())
		}
		d.err = classErr{"validation"}
		for range 20 {
			_, _ = h(newMsg())
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetClosed {
			t.Fatalf("state %s after 40 permanent and validation errors, want closed", st)
		}
		d.err = nil
		for range 10 {
			_, _ = h(newMsg())
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after 10 downstream failures, want open", st)
		}
	})
}

// A probe that panics is a failed probe: the fleet opens again (before,
// the panic skipped the count and the probe's result was never reported).
func TestFleetBreakerPanickingProbeReopens(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b := newFleet(t, s, "a", 0)
		defer b.Close()
		if err := b.SetForce(context.Background(), breaker.ForceNone); err != nil {
			t.Fatal(err)
		}
		d := &downstream{}
		d.setDown(true)
		h := b.Middleware(d.handle)
		for range 10 {
			_, _ = h(newMsg())
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s, want open", st)
		}
		testkit.Advance(time.Second + breaker.DefaultFleetReportEvery)
		if st := b.State(); st != breaker.FleetHalfOpen {
			t.Fatalf("state %s after open_for, want half-open", st)
		}
		ph := b.Middleware(func(*message.Message) ([]*message.Message, error) { panic("boom") })
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the panic was swallowed")
				}
			}()
			_, _ = ph(newMsg())
		}()
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after a panicking probe, want open", st)
		}
	})
}
