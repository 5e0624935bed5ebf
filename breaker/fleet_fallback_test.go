package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/hold"
	"github.com/levee-dev/levee/internal/testkit"
)

// With on_store_error local, a replica whose store is gone while its
// downstream is down too does what a local Breaker does: when open_for
// ends it lets one probe through, not its whole backlog; a failed probe
// opens it again; a good one starts a drain at its share of the ramp,
// and only the drain's end closes it. Before, open_for's end closed it
// at once: every waiting message hit the downstream, still down, until
// min_requests failures tripped it again, and a recovered downstream took
// the backlog at full speed.
func TestFleetBreakerLocalFallbackProbesAndDrains(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b := newFleet(t, s, "a", breaker.OnStoreError(fleet.Local))
		defer b.Close()
		var down atomic.Bool
		down.Store(true)
		var calls atomic.Int64
		var mu sync.Mutex
		var upCalls []time.Time // calls with the downstream back
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
			calls.Add(1)
			if down.Load() {
				return nil, errDownstream
			}
			mu.Lock()
			upCalls = append(upCalls, time.Now())
			mu.Unlock()
			return nil, nil
		})
		for i := range 10 {
			_, _ = h(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after the failures, want open", st)
		}
		s.SetErr(errors.New("store down"))
		testkit.Advance(breaker.DefaultFleetReportEvery)

		// A backlog waits; open_for (1s) passes with the downstream down.
		calls.Store(0)
		const backlog = 40
		done := make(chan struct{}, backlog)
		for i := range backlog {
			go func() { _, _ = h(message.NewMessage(fmt.Sprint("backlog-", i), nil)); done <- struct{}{} }()
		}
		testkit.Advance(time.Second + 2*breaker.DefaultFleetReportEvery)
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d calls when open_for ended with the store and the downstream down, want 1 probe", n)
		}
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after a failed local probe, want open", st)
		}

		// The downstream is back: after open_for one probe, then the drain.
		down.Store(false)
		calls.Store(0)
		testkit.Advance(time.Second + breaker.DefaultFleetReportEvery)
		if st := b.State(); st != breaker.FleetDraining {
			t.Fatalf("state %s after a good local probe, want draining", st)
		}
		// The probe, then the ramp from 10% of 100/s: a few calls in the
		// first 100ms after the probe, not the waiting backlog.
		mu.Lock()
		if len(upCalls) == 0 {
			t.Fatal("no call with the downstream back, want the probe")
		}
		probe, inFirst := upCalls[0], 0
		for _, at := range upCalls {
			if at.Sub(probe) < 100*time.Millisecond {
				inFirst++
			}
		}
		mu.Unlock()
		if inFirst > 5 {
			t.Errorf("%d calls in the 100ms after the probe of a backlog of %d, want at most 5 (the ramp)", inFirst, backlog)
		}
		testkit.Advance(5 * time.Second) // the drain window (1s) and the max hold (3s) pass
		for range backlog {
			<-done
		}
		if st := b.State(); st != breaker.FleetClosed {
			t.Errorf("state %s after the local drain, want closed", st)
		}
	})
}

// The fleet breaker's wait takes what is left of the delivery's hold when
// a layer further out recorded it (package hold), as the local Breaker's
// does, and records the hold for the layers further in when it waits.
func TestFleetBreakerSharesTheDeliveryHold(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b := newFleet(t, s, "a", breaker.OnStoreError(fleet.Local)) // max hold 3s
		defer b.Close()
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errDownstream })
		for i := range 10 {
			_, _ = h(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after the failures, want open", st)
		}
		msg := message.NewMessage("held", nil)
		msg.SetContext(context.Background())
		start := time.Now()
		hold.Record(msg, start.Add(200*time.Millisecond)) // 200ms of the hold left
		_, err := h(msg)
		var oe *breaker.OpenError
		if !errors.As(err, &oe) {
			t.Fatalf("err %v, want an *OpenError at the delivery's hold", err)
		}
		if waited := time.Since(start); waited != 200*time.Millisecond {
			t.Errorf("waited %v, want the 200ms left of the delivery's hold (not the breaker's own 3s)", waited)
		}

		fresh := message.NewMessage("fresh", nil)
		fresh.SetContext(context.Background())
		start = time.Now()
		_, _ = h(fresh)
		d, ok := hold.Deadline(fresh.Context())
		if !ok || d.Sub(start) != 3*time.Second {
			t.Errorf("recorded hold %v (%v), want the deadline 3s after its wait started, for the layers further in", d.Sub(start), ok)
		}
	})
}

// The local fallback keeps the operator's kill switch: a fleet forced
// open when the store fails stays open past open_for (no local probe).
func TestFleetBreakerLocalFallbackKeepsForceOpen(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b := newFleet(t, s, "a", breaker.OnStoreError(fleet.Local))
		defer b.Close()
		if err := b.SetForce(context.Background(), breaker.ForceOpen); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		s.SetErr(errors.New("store down"))
		for i := range 30 {
			testkit.Advance(100 * time.Millisecond)
			if st := b.State(); st != breaker.FleetOpen {
				t.Fatalf("state %s with the store down %dms after a force open, want open (the kill switch holds)", st, 100*(i+1))
			}
		}
	})
}

// A store that fails while the fleet is half-open and another replica
// holds the probe lease: this replica probes once on its own, and its
// probe's outcome decides, as for a local Breaker.
func TestFleetBreakerLocalFallbackFromHalfOpen(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		a, b := newFleet(t, s, "a", breaker.OnStoreError(fleet.Local)), newFleet(t, s, "b", breaker.OnStoreError(fleet.Local))
		defer a.Close()
		defer b.Close()
		fail := func(*message.Message) ([]*message.Message, error) { return nil, errDownstream }
		ha := a.Middleware(fail)
		for i := range 10 {
			_, _ = ha(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(time.Second + 3*breaker.DefaultFleetReportEvery) // open_for passes: half-open
		if a.State() != breaker.FleetHalfOpen || b.State() != breaker.FleetHalfOpen {
			t.Fatalf("states %s %s after open_for, want half-open", a.State(), b.State())
		}
		// a takes the lease with a probe that hangs; the store then fails.
		release := make(chan struct{})
		go func() {
			_, _ = a.Middleware(func(*message.Message) ([]*message.Message, error) { <-release; return nil, errDownstream })(message.NewMessage("a-probe", nil))
		}()
		testkit.Advance(time.Millisecond)
		s.SetErr(errors.New("store down"))
		var mu sync.Mutex
		var at []time.Time
		hb := b.Middleware(func(*message.Message) ([]*message.Message, error) {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			return nil, nil
		})
		done := make(chan struct{}, 20)
		for i := range 20 {
			go func() { _, _ = hb(message.NewMessage(fmt.Sprint("b-", i), nil)); done <- struct{}{} }()
		}
		testkit.Advance(2 * breaker.DefaultFleetReportEvery)
		if st := b.State(); st != breaker.FleetDraining {
			t.Errorf("replica b: state %s after its own good probe with the store down, want draining", st)
		}
		mu.Lock()
		inFirst := 0
		for _, c := range at {
			if c.Sub(at[0]) < 100*time.Millisecond {
				inFirst++
			}
		}
		n := len(at)
		mu.Unlock()
		if n == 0 || inFirst > 3 {
			t.Errorf("replica b: %d calls, %d of them in the 100ms after the first, want its probe then the ramp from 10%% of 100/s (at most 3)", n, inFirst)
		}
		close(release)
		testkit.Advance(5 * time.Second)
		for range 20 {
			<-done
		}
	})
}

// When the probe lease moves to this replica while the fleet stays
// half-open (its holder died: it stopped reporting), a message already
// waiting here takes it. Before, the waiting messages slept until the
// state changed or their max hold ended: nothing probed meanwhile.
func TestFleetBreakerLeaseMovesToAWaitingReplica(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		mk := func(member string) *breaker.FleetBreaker {
			b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Member: member, MinRequests: 10,
				Window: time.Second, OpenFor: time.Second, ProbeTTL: 2 * time.Second, DrainWindow: time.Second,
				DrainRate: 100, MaxHold: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		a := mk("a")
		defer a.Close()
		ha := a.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errDownstream })
		for i := range 10 {
			_, _ = ha(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(time.Second + 3*breaker.DefaultFleetReportEvery) // half-open: a, alone, holds the lease
		release := make(chan struct{})
		hang := a.Middleware(func(*message.Message) ([]*message.Message, error) { <-release; return nil, nil })
		done := make(chan struct{}, 2)
		go func() { _, _ = hang(message.NewMessage("a-probe", nil)); done <- struct{}{} }()
		testkit.Advance(time.Millisecond)

		b := mk("b") // joins while a's probe runs: its message waits
		defer b.Close()
		var bCalls atomic.Int64
		hb := b.Middleware(func(*message.Message) ([]*message.Message, error) { bCalls.Add(1); return nil, nil })
		go func() { _, _ = hb(message.NewMessage("b-1", nil)); done <- struct{}{} }()
		testkit.Advance(2 * breaker.DefaultFleetReportEvery)
		if st, n := b.State(), bCalls.Load(); st != breaker.FleetHalfOpen || n != 0 {
			t.Fatalf("replica b: state %s, %d calls while a probes, want half-open and 0", st, n)
		}
		_ = a.Close()                    // a dies with its probe in flight
		testkit.Advance(3 * time.Second) // probe_ttl passes: the lease moves to b
		if n := bCalls.Load(); n != 1 {
			t.Errorf("%d calls on replica b after a's lease expired, want 1 (b's waiting message probes)", n)
		}
		close(release)
		testkit.Advance(30 * time.Second)
		<-done
		<-done
	})
}

// A replica that starts while the fleet is open (a restart during an
// outage) holds its messages from its first one: NewFleet reports once
// before it returns. Before, it ran them at full speed until its first
// report, ReportEvery later.
func TestFleetBreakerJoiningAnOpenFleetHolds(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		a := newFleet(t, s, "a", breaker.OnStoreError(fleet.Local))
		defer a.Close()
		ha := a.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errDownstream })
		for i := range 10 {
			_, _ = ha(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		b := newFleet(t, s, "b", breaker.OnStoreError(fleet.Local))
		defer b.Close()
		if st := b.State(); st != breaker.FleetOpen {
			t.Errorf("a replica joining an open fleet: state %s, want open at once", st)
		}
		var calls atomic.Int64
		done := make(chan struct{})
		go func() {
			_, _ = b.Middleware(func(*message.Message) ([]*message.Message, error) { calls.Add(1); return nil, nil })(message.NewMessage("b-1", nil))
			close(done)
		}()
		testkit.Advance(time.Millisecond)
		if n := calls.Load(); n != 0 {
			t.Errorf("%d calls on a replica that joined an open fleet, want 0 (held)", n)
		}
		testkit.Advance(10 * time.Second)
		<-done
	})
}
