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

// localWindow is the on_store_error: local fallback: the replica's own
// counts since the store failed, and a local open until a time.
type localWindow struct {
	s, f  uint64
	since time.Time
	until time.Time // open until, zero when not open
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
		Key: b.cfg.Key, Member: b.cfg.Member, Successes: s, Failures: f, Probe: int(pr),
		Window: b.cfg.Window, MinRequests: b.cfg.MinRequests, FailureRatio: b.cfg.FailureRatio,
		OpenFor: b.cfg.OpenFor, ProbeTTL: b.cfg.ProbeTTL, DrainWindow: b.cfg.DrainWindow,
		MemberTTL: 5 * b.cfg.ReportEvery,
	})
	b.ctl.RoundTrip(b.cfg.Key, time.Since(t0), err)
	if err != nil {
		if pr != 0 {
			b.result.CompareAndSwap(0, pr) // report the probe once the store is back
		}
		b.storeFailed(err, s, f, now)
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
			b.probe.Store(1) // a new probe lease: one message may probe
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

func (b *FleetBreaker) setState(st FleetState) {
	if FleetState(b.word.Swap(uint32(st))) == st {
		return
	}
	b.mu.Lock()
	close(b.gen)
	b.gen = make(chan struct{})
	b.mu.Unlock()
}

// storeFailed applies the on_store_error mode.
func (b *FleetBreaker) storeFailed(err error, s, f uint64, now time.Time) {
	b.mu.Lock()
	first := !b.degraded
	b.degraded = true
	lw := &b.local
	if first {
		*lw = localWindow{since: now}
		if b.view.State == FleetOpen {
			lw.until = now.Add(b.cfg.OpenFor) // open when the store went away: open_for more
		}
	}
	members := uint64(max(b.view.Members, 1))
	last := b.view.State
	st := last
	switch b.cfg.OnStoreError {
	case fleet.FailOpen:
		st = FleetClosed
	case fleet.FailClosed:
		st = FleetOpen
	default:
		st = b.localLocked(lw, s, f, members, last, now)
	}
	rate := 0.0
	if st == FleetDraining {
		// The drain goes on from the last fleet view on the local clock:
		// the drain pool, failing too, paces this replica at its share
		// of the ramp.
		elapsed := b.view.DrainElapsed + now.Sub(b.viewAt)
		if rate = b.drainRate(b.view.Baseline, elapsed); rate <= 0 || elapsed >= b.cfg.DrainWindow {
			st, rate = FleetClosed, 0
		}
	}
	b.mu.Unlock()
	if rate > 0 {
		b.drain.SetRate(rate)
	}
	if first {
		b.ctl.Fallback(b.cfg.Key, b.cfg.OnStoreError, err)
	}
	b.setState(st)
}

// localLocked is the local fallback: the last fleet state (half-open,
// which needs the store's probe lease, becomes closed; draining goes on),
// or the replica's own window (min_requests divided by the last known
// number of replicas) tripping it open for open_for.
func (b *FleetBreaker) localLocked(lw *localWindow, s, f, members uint64, last FleetState, now time.Time) FleetState {
	if !lw.until.IsZero() {
		if now.Before(lw.until) {
			return FleetOpen
		}
		*lw = localWindow{since: now}
		return FleetClosed
	}
	if now.Sub(lw.since) > b.cfg.Window {
		*lw = localWindow{since: now}
	}
	lw.s += s
	lw.f += f
	minReq := max(1, (b.cfg.MinRequests+members-1)/members)
	if n := lw.s + lw.f; n > 0 && n >= minReq && float64(lw.f)/float64(n) >= b.cfg.FailureRatio {
		lw.until = now.Add(b.cfg.OpenFor)
		return FleetOpen
	}
	if last == FleetHalfOpen {
		return FleetClosed // no probe lease without the store: the window decides
	}
	return last // draining goes on locally (storeFailed)
}

// drainObserver reports the drain pool's round trips and leases. Its store
// failures are not fallbacks of their own: the breaker's report loop sees
// the same store fail and reports the outage once (levee.fleet.fallbacks,
// levee.fleet.degraded and the log line count breakers, not their pools).
type drainObserver struct{ *fleet.Telemetry }

// Fallback does nothing: see drainObserver.
func (drainObserver) Fallback(string, fleet.OnStoreError, error) {}

// Released does nothing: see drainObserver.
func (drainObserver) Released(string) {}
