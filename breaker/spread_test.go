package breaker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

var errShed = errors.New("shed")

// deferred is a handler whose call ends in a deferral (a layer further
// in, such as priority or ratelimit, declined to run it).
func deferred(*message.Message) ([]*message.Message, error) {
	return nil, levee.Defer(10*time.Millisecond, errShed)
}

// The dlq retrying a few poison messages while other messages keep
// arriving (here deferred by a layer further in, as under an overload)
// makes a long run of failures from few messages: that is not a
// downstream outage, and it does not trip the breaker. Failures of as many
// distinct messages as the threshold do.
func TestPoisonRetriesAmongOtherMessagesDoNotTrip(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(5))
		d := &downstream{}
		d.setDown(true)
		h, shed := b.Middleware(d.handle), b.Middleware(deferred)
		p1, p2 := newMsg(), newMsg()
		for range 10 {
			_, _ = h(p1)
			_, _ = shed(newMsg())
			_, _ = h(p2)
			_, _ = shed(newMsg())
		}
		wantState(t, b, breaker.StateClosed)
		if c := b.Counts(); c.ConsecutiveFailures != 20 {
			t.Fatalf("run of %d failures, want 20 (all counted)", c.ConsecutiveFailures)
		}
		for range 3 {
			_, _ = h(newMsg())
		}
		wantState(t, b, breaker.StateOpen) // 5 distinct messages failed
	})
}

// With one message in flight (an ordered consumer) an outage fails only
// that message, again and again: its retries alone trip the breaker, as
// soon as the threshold's failures, so the outage does not dead-letter
// message after message before the breaker opens. The same holds for a
// few messages in flight and nothing else arriving.
func TestFewMessagesInFlightStillTrip(t *testing.T) {
	for _, inFlight := range []int{1, 4} {
		t.Run(map[int]string{1: "one", 4: "four"}[inFlight], func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				b := mustNew(t, breaker.WithConsecutiveFailures(20))
				d := &downstream{}
				d.setDown(true)
				h := b.Middleware(d.handle)
				msgs := make([]*message.Message, inFlight)
				for i := range msgs {
					msgs[i] = newMsg()
				}
				for i := range 19 {
					_, _ = h(msgs[i%inFlight])
				}
				wantState(t, b, breaker.StateClosed)
				_, _ = h(msgs[19%inFlight])
				wantState(t, b, breaker.StateOpen)
			})
		})
	}
}

// A success ends the run: the messages of the next run are counted
// afresh.
func TestSpreadStartsAfreshAfterASuccess(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(3))
		d := &downstream{}
		h, shed := b.Middleware(d.handle), b.Middleware(deferred)
		d.setDown(true)
		_, _ = h(newMsg())
		for range 5 {
			_, _ = shed(newMsg()) // five other messages seen in the run
		}
		d.setDown(false)
		_, _ = h(newMsg()) // the run ends
		d.setDown(true)
		p := newMsg()
		for range 3 {
			_, _ = h(p) // one message, nothing else: its retries trip
		}
		wantState(t, b, breaker.StateOpen)
	})
}

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
