package breaker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// One message failing again and again (the dlq retrying a poison message
// in process, or its redeliveries) counts once toward tripping: the
// breaker opens on failures of distinct messages, i.e. on the downstream.
func TestRepeatedFailuresOfOneMessageCountOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []breaker.Option
	}{
		{"consecutive failures", []breaker.Option{breaker.WithConsecutiveFailures(3)}},
		{"failure ratio", []breaker.Option{breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0.5, 4)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				b := mustNew(t, append(tt.opts, breaker.WithWindow(10*time.Second))...)
				d := &downstream{}
				h := b.Middleware(d.handle)
				d.setDown(true)
				poison := newMsg()
				for range 20 {
					if _, err := h(poison); err == nil {
						t.Fatal("a failing call returned nil")
					}
				}
				wantState(t, b, breaker.StateClosed)
				if d.Calls() != 20 {
					t.Fatalf("%d calls, want 20 (closed: every call goes through)", d.Calls())
				}
				// Failures of other messages count: the downstream is down.
				for range 3 {
					_, _ = h(newMsg())
				}
				wantState(t, b, breaker.StateOpen)
			})
		})
	}
}

// A message is remembered for at most two windows: failing again after
// that counts again.
func TestRepeatedFailureCountsAgainAfterTheWindow(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(2), breaker.WithWindow(time.Second))
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		poison := newMsg()
		_, _ = h(poison)
		_, _ = h(poison)
		wantState(t, b, breaker.StateClosed)
		// After two windows the first streak has rolled out and the message
		// is forgotten: its next failure counts again (one, not two), and
		// one more message's failure makes the two that trip.
		testkit.Advance(2*time.Second + time.Millisecond)
		_, _ = h(poison)
		_, _ = h(poison)
		wantState(t, b, breaker.StateClosed)
		_, _ = h(newMsg())
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
// error is the message's fault and not counted, and one message's repeated
// failures count once.
func TestFleetBreakerCountsDownstreamFailuresOnce(t *testing.T) {
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
		d.err = nil
		poison := newMsg()
		for range 20 {
			_, _ = h(poison)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetClosed {
			t.Fatalf("state %s after 40 permanent/validation errors and one message failing 20 times, want closed", st)
		}
		for i := range 10 {
			_, _ = h(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after 10 distinct messages failed, want open", st)
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
