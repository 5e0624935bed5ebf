package breaker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
)

func fleetMember() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// localWindow is the on_store_error: local fallback: a breaker of the
// replica's own, started from the last fleet state when the store failed.
// It runs what the local Breaker runs: its own window of outcomes trips it
// open for open_for, then one probe decides between open again and a drain
// on the replica's clock, at its share of the ramp, then closed.
type localWindow struct {
	state     FleetState
	force     fleet.Force // the kill switch the store last reported: it holds
	s, f      uint64      // outcomes counted in the window since since
	since     time.Time
	until     time.Time // open until
	drainFrom time.Time // the drain's start on the local clock (draining)
}

// run reports every ReportEvery and at every kick (a probe's result, a
// force), then once more at Close.
func (b *FleetBreaker) run() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.ReportEvery)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			b.report(time.Now())
			return
		case <-b.kick:
		case <-t.C:
		}
		b.report(time.Now())
	}
}

// report sends the counts since the last report and applies the answer.
func (b *FleetBreaker) report(now time.Time) {
	s, f := b.ok.Swap(0), b.fail.Swap(0)
	pr := b.result.Swap(0)
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.StoreTimeout)
	defer cancel()
	t0 := time.Now()
	v, err := b.cfg.Store.Report(ctx, fleet.Report{
		Key: b.cfg.Key, Member: b.cfg.Member, Successes: s, Failures: f, Probe: int(pr), Idle: b.waiting.Load() == 0,
		Window: b.cfg.Window, MinRequests: b.cfg.MinRequests, FailureRatio: b.cfg.FailureRatio,
		OpenFor: b.cfg.OpenFor, ProbeTTL: b.cfg.ProbeTTL, DrainWindow: b.cfg.DrainWindow,
		MemberTTL: 5 * b.cfg.ReportEvery,
	})
	b.ctl.RoundTrip(b.cfg.Key, time.Since(t0), err)
	if err != nil {
		b.storeFailed(err, s, f, pr, now)
		return
	}
	b.apply(v)
}

// apply makes v the replica's state.
func (b *FleetBreaker) apply(v fleet.View) {
	b.mu.Lock()
	if b.degraded {
		b.degraded, b.local = false, localWindow{}
		defer b.ctl.Fallback(b.cfg.Key, b.cfg.OnStoreError, nil)
	}
	old := b.view
	b.view, b.viewAt = v, time.Now()
	b.mu.Unlock()
	st := v.State
	if st == FleetHalfOpen {
		if v.Probe && (old.State != FleetHalfOpen || !old.Probe || old.Generation != v.Generation) {
			b.mu.Lock()
			b.armProbeLocked() // a new probe lease: one message may probe
			b.mu.Unlock()
		}
	}
	if !v.Probe {
		b.probe.Store(0)
	}
	if st == FleetDraining {
		if r := b.drainRate(v.Baseline, v.DrainElapsed); r > 0 {
			b.drain.SetRate(r)
		} else {
			st = FleetClosed // nothing to ramp against
		}
	}
	b.setState(st)
}

// drainRate returns the drain pool's rate for the next report interval,
// elapsed into the drain window: the ramp at the interval's middle, or 0
// when there is nothing to ramp against (no drain rate, no baseline).
func (b *FleetBreaker) drainRate(baseline float64, elapsed time.Duration) float64 {
	base := b.cfg.DrainRate
	if base == 0 {
		base = baseline
	}
	if base <= 0 {
		return 0
	}
	return base * RampFraction(elapsed+b.cfg.ReportEvery/2, b.cfg.DrainWindow, b.cfg.DrainStart, 1)
}

// armProbeLocked lets one message probe and wakes the waiting ones, which
// wait for a change of state: the lease can come while the state stays
// half-open (another replica's lease expired, or the store failed). b.mu
// is held.
func (b *FleetBreaker) armProbeLocked() {
	b.probe.Store(1)
	close(b.gen)
	b.gen = make(chan struct{})
}

func (b *FleetBreaker) setState(st FleetState) {
	if FleetState(b.word.Swap(uint32(st))) == st {
		return
	}
	b.mu.Lock()
	close(b.gen)
	b.gen = make(chan struct{})
	b.mu.Unlock()
}

// storeFailed applies the on_store_error mode; pr is the outcome of a
// probe not yet reported (0: none).
func (b *FleetBreaker) storeFailed(err error, s, f uint64, pr int32, now time.Time) {
	b.mu.Lock()
	first := !b.degraded
	b.degraded = true
	var st FleetState
	rate := 0.0
	switch b.cfg.OnStoreError {
	case fleet.FailOpen:
		st = FleetClosed
	case fleet.FailClosed:
		st = FleetOpen
	default:
		if first {
			b.startLocalLocked(now)
		}
		st, rate = b.localLocked(s, f, pr, now)
		pr = 0 // the local breaker took the probe's outcome
	}
	b.mu.Unlock()
	if pr != 0 {
		b.result.CompareAndSwap(0, pr) // report the probe once the store is back
	}
	if rate > 0 {
		b.drain.SetRate(rate)
	}
	if first {
		b.ctl.Fallback(b.cfg.Key, b.cfg.OnStoreError, err)
	}
	b.setState(st)
}

// startLocalLocked starts the local breaker from the last fleet view: open
// for open_for more, half-open with a probe of its own (or the fleet's, when
// this replica holds the lease), draining on from where the fleet's drain
// was, or closed.
func (b *FleetBreaker) startLocalLocked(now time.Time) {
	v := b.view
	b.local = localWindow{state: v.State, force: v.Force, since: now}
	switch v.State {
	case FleetOpen:
		b.local.until = now.Add(b.cfg.OpenFor)
	case FleetHalfOpen:
		if !v.Probe {
			b.armProbeLocked() // another replica holds the fleet's lease
		}
	case FleetDraining:
		b.local.drainFrom = b.viewAt.Add(-v.DrainElapsed)
	}
}

// localLocked steps the local breaker at a report the store did not answer:
// s and f are the outcomes since the last report, pr a probe's (0: none).
// It returns the state and, while draining, the drain pool's rate.
func (b *FleetBreaker) localLocked(s, f uint64, pr int32, now time.Time) (FleetState, float64) {
	lw := &b.local
	switch lw.force {
	case fleet.ForceOpen:
		return FleetOpen, 0
	case fleet.ForceClosed:
		return FleetClosed, 0
	}
	switch lw.state {
	case FleetOpen:
		if !now.Before(lw.until) {
			lw.state = FleetHalfOpen
			b.armProbeLocked()
		}
	case FleetHalfOpen:
		switch pr {
		case 1:
			*lw = localWindow{state: FleetDraining, force: lw.force, since: now, drainFrom: now}
		case -1:
			lw.state, lw.until = FleetOpen, now.Add(b.cfg.OpenFor)
		}
	}
	if lw.state == FleetClosed || lw.state == FleetDraining {
		// The replica's own window, with min_requests divided by the last
		// known number of replicas, trips it open for open_for.
		if now.Sub(lw.since) > b.cfg.Window {
			lw.s, lw.f, lw.since = 0, 0, now
		}
		lw.s += s
		lw.f += f
		members := uint64(max(b.view.Members, 1))
		minReq := max(1, (b.cfg.MinRequests+members-1)/members)
		if n := lw.s + lw.f; n > 0 && n >= minReq && float64(lw.f)/float64(n) >= b.cfg.FailureRatio {
			*lw = localWindow{state: FleetOpen, force: lw.force, since: now, until: now.Add(b.cfg.OpenFor)}
		}
	}
	if lw.state != FleetDraining {
		return lw.state, 0
	}
	elapsed := now.Sub(lw.drainFrom)
	rate := b.drainRate(b.view.Baseline, elapsed)
	if rate <= 0 || elapsed >= b.cfg.DrainWindow {
		*lw = localWindow{state: FleetClosed, force: lw.force, since: now}
		return FleetClosed, 0
	}
	return FleetDraining, rate
}
