package fleet

import (
	"context"
	"math"
	"time"

	"github.com/levee-dev/levee/internal/gcra"
)

// Lease timing, in lease periods (docs/FLEET.md states them).
const (
	// MemberTTLPeriods is how long a replica counts as live after a lease.
	MemberTTLPeriods = 5
	// IdlePeriods is how long unspent tokens are kept after their lease.
	IdlePeriods = 2
	// MinSpacingDiv bounds round trips: one per Period/MinSpacingDiv at
	// most, one per Period/ShortSpacingDiv after a short grant.
	MinSpacingDiv   = 4
	ShortSpacingDiv = 2
)

// leaser is the state of a Pool's fetch loop, owned by its goroutine.
type leaser struct {
	demand    float64   // EWMA of tokens spent per second
	held      int64     // tokens held right after the last lease
	lastFetch time.Time // when the last lease was asked for
	lastGrant time.Time // when tokens last arrived
	lastSpend time.Time // when the last step saw tokens spent
	spentAcc  int64     // tokens spent (and fallback admissions) since the last lease
	nextAt    time.Time // no store call before this (after a short grant)
}

// maxLease is the largest lease: one period of the fleet rate, at least 1.
func (p *Pool) maxLease(rate float64) int64 {
	return max(1, int64(math.Ceil(rate*p.cfg.Period.Seconds())))
}

func (p *Pool) run() {
	defer p.wg.Done()
	var st leaser
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-p.done:
			p.giveBack()
			return
		case <-p.kick:
		case <-t.C:
		}
		if next := p.step(&st, time.Now()); next > 0 {
			t.Reset(next)
		}
	}
}

// step asks for a lease when the tokens held are below the target and
// returns when to look again (0: at the next kick).
func (p *Pool) step(st *leaser, now time.Time) time.Duration {
	p.mu.Lock()
	rate, waiting := p.rate, p.waiting
	p.mu.Unlock()
	held := p.tokens.sum()
	// Demand: tokens spent, and messages the fallback admitted (so the
	// first lease after an outage fits the demand).
	if spent := max(st.held-held, 0) + p.fbSpent.Swap(0); spent > 0 {
		st.spentAcc += spent
		st.lastSpend = now
	}
	st.held = held
	if now.Before(st.nextAt) {
		return st.nextAt.Sub(now) // a failing store or a short grant: not yet
	}
	if next := st.lastFetch.Add(p.cfg.Period / MinSpacingDiv); now.Before(next) {
		return next.Sub(now) // at most one round trip per quarter period
	}
	if p.prefetch.Swap(false) {
		waiting = max(waiting, 1) // a caller is about to wait (Prefetch)
	}
	demand := st.demand
	if el := now.Sub(st.lastFetch).Seconds(); !st.lastFetch.IsZero() && el > 0 {
		demand = 0.5*st.demand + 0.5*float64(st.spentAcc)/el
	}
	maxL := p.maxLease(rate)
	target := max(1, int64(math.Ceil(demand*p.cfg.Period.Seconds())))
	if st.lastFetch.IsZero() {
		target = maxL // no demand known yet: ask for a full lease (the store grants its share)
	}
	if waiting > 0 {
		target = max(2*target, int64(waiting)) // demand outruns the lease: grow it
	}
	target = min(target, maxL)
	idle := !st.lastFetch.IsZero() && waiting == 0 && now.Sub(st.lastSpend) >= p.cfg.Period && !p.degraded.Load()
	need := target - held
	if p.degraded.Load() {
		// Only a lease ends an outage: while the store is failing, ask
		// once per period even with enough tokens held, or a replica
		// that idles holding them stays degraded (levee.fleet.degraded,
		// LeveeFleetStoreDown) after the store came back.
		need = max(need, 1)
	}
	if need <= 0 || idle {
		return p.expire(st, now, held, target, idle)
	}
	lease, err := p.gatedLease(now, rate, int(need), maxL)
	st.lastFetch, st.demand, st.spentAcc = now, demand, 0
	if !p.answered.Swap(true) {
		defer p.broadcast() // wake AwaitFirstLease, whatever the answer
	}
	if err != nil {
		p.fail(err)
		st.nextAt = now.Add(p.cfg.Period) // retry the store once per period
		return p.cfg.Period
	}
	p.recover(lease)
	p.tokens.add(int64(lease.Tokens))
	total := p.tokens.sum()
	st.held = total
	p.low.Store(target / 2)
	if lease.Tokens > 0 {
		st.lastGrant = now
		p.cfg.Observer.Leased(p.cfg.Key, lease.Tokens)
		p.broadcast()
	}
	if lease.Tokens < int(need) {
		// A short grant: look again when the store says a token is free,
		// but no sooner than half a period, so round trips stay bounded.
		ra := lease.RetryAfter
		if ra < 0 {
			ra = p.cfg.Period
		}
		ra = max(ra, p.cfg.Period/ShortSpacingDiv)
		st.nextAt = now.Add(ra)
		return ra
	}
	return IdlePeriods * p.cfg.Period
}

// expire gives back, two periods after the last lease, the tokens beyond
// what the replica's demand needs (all of them when it is idle: nothing
// spent for a period and nobody waiting), so tokens are never hoarded;
// otherwise it waits for a kick.
func (p *Pool) expire(st *leaser, now time.Time, held, target int64, idle bool) time.Duration {
	if held <= 0 || st.lastGrant.IsZero() {
		return 0
	}
	if age := now.Sub(st.lastGrant); age < IdlePeriods*p.cfg.Period {
		return IdlePeriods*p.cfg.Period - age
	}
	excess := held - target // still spending: keep one lease's worth
	if idle {
		excess = held
	}
	st.lastGrant = now
	if excess > 0 {
		p.giveBackN(excess)
		st.held = p.tokens.sum()
	}
	return IdlePeriods * p.cfg.Period
}

// giveBack returns all unspent tokens to the store (best effort).
func (p *Pool) giveBack() { p.giveBackN(math.MaxInt64) }

// giveBackN takes up to n held tokens and returns them to the store (best
// effort); it reports how many it took.
func (p *Pool) giveBackN(n int64) int64 {
	k := p.tokens.drain(n)
	if k <= 0 {
		return 0
	}
	p.mu.Lock()
	rate := p.rate
	p.mu.Unlock()
	if _, err := p.lease(rate, -int(k), p.maxLease(rate)); err == nil {
		p.cfg.Observer.Leased(p.cfg.Key, -int(k))
	}
	return k
}

// lease makes one store call, bounded by the store timeout.
// gatedLease is lease, through the outage gate of a per-key limit's
// Pools: while the store fails, a Pool whose turn it is not gets the last
// failure without a store call.
func (p *Pool) gatedLease(now time.Time, rate float64, n int, maxL int64) (Lease, error) {
	g := p.cfg.gate
	if g == nil {
		return p.lease(rate, n, maxL)
	}
	if ok, down := g.turn(now, p.cfg.Period); !ok {
		return Lease{}, down // another key asks the failing store for the limit
	}
	l, err := p.lease(rate, n, maxL)
	g.report(err)
	return l, err
}

func (p *Pool) lease(rate float64, n int, maxL int64) (Lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StoreTimeout)
	defer cancel()
	t0 := time.Now()
	l, err := p.cfg.Store.Lease(ctx, LeaseRequest{
		Key: p.cfg.Key, Member: p.cfg.Member, Rate: rate,
		Burst: max(p.cfg.Burst, int(maxL)), N: n, MemberTTL: MemberTTLPeriods * p.cfg.Period,
	})
	p.cfg.Observer.RoundTrip(p.cfg.Key, time.Since(t0), err)
	return l, err
}

// fail switches to the OnStoreError mode (once per outage) and wakes the
// waiters so that they use it.
func (p *Pool) fail(err error) {
	if p.degraded.Load() {
		return
	}
	p.mu.Lock()
	share := p.rate / float64(max(p.members, 1))
	burst := max(1, p.cfg.Burst/max(p.members, 1))
	p.mu.Unlock()
	p.local.Update(func(s *gcra.State) bool {
		s.Unlimited, s.Rate, s.Burst = false, share, burst
		return true
	})
	p.degraded.Store(true)
	p.cfg.Observer.Fallback(p.cfg.Key, p.cfg.OnError, err)
	p.broadcast()
}

// recover records a successful lease: the live member count, the store's
// hint, and the end of an outage.
func (p *Pool) recover(l Lease) {
	p.mu.Lock()
	p.members = max(l.Members, 1)
	p.retryAfter = max(l.RetryAfter, 0)
	p.mu.Unlock()
	if p.degraded.Load() {
		p.degraded.Store(false)
		p.cfg.Observer.Fallback(p.cfg.Key, p.cfg.OnError, nil)
		p.broadcast()
	}
}
