package fleet

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levee-dev/levee/internal/gcra"
)

// Defaults of PoolConfig.
const (
	// DefaultPeriod is the default lease period: a lease covers at most
	// this much of the fleet rate, and is sized from this much of the
	// replica's own demand.
	DefaultPeriod = 200 * time.Millisecond
	// DefaultStoreTimeout bounds one store call, and so the latency a slow
	// or unreachable store can add to a message.
	DefaultStoreTimeout = 50 * time.Millisecond
)

// PoolConfig configures a Pool. Zero durations take the defaults.
type PoolConfig struct {
	Store        LeaseStore
	Key          string
	Member       string
	Rate         float64 // fleet tokens per second
	Burst        int     // shared bucket size; raised to one lease if smaller
	Period       time.Duration
	StoreTimeout time.Duration
	OnError      OnStoreError
	Observer     Observer    // nil: NopObserver
	gate         *outageGate // set by NewKeyed: its keys ask a failing store once per period between them
}

// Status says how a Take ended.
type Status uint8

// Statuses of Take. Granted and Bypass admit.
const (
	Granted  Status = iota // a leased token (or a local-share token) was taken
	Bypass                 // fail_open while the store is failing: admitted without the fleet limit
	Limited                // no token within the wait allowed (or reject mode, or fail_closed)
	Canceled               // the context ended first
	Closed                 // the Pool is closed
)

// Result is how a Take ended; RetryAfter is set for Limited.
type Result struct {
	Status     Status
	RetryAfter time.Duration
}

// OK reports whether the message is admitted.
func (r Result) OK() bool { return r.Status == Granted || r.Status == Bypass }

// Pool spends a replica's leased tokens of one shared limit. Take costs
// one compare-and-swap while tokens last; a goroutine fetches the next
// lease when the tokens fall to a low-water mark (half a lease), so a
// message waits on the store only when demand outruns the fleet limit or
// the store fails. A Pool is safe for concurrent use; Close stops its
// goroutine and gives unspent tokens back.
type Pool struct {
	tokens   counter
	low      atomic.Int64 // prefetch when the tokens fall to this
	degraded atomic.Bool  // the store is failing; OnError applies
	fbSpent  atomic.Int64 // messages admitted by the fallback since the last step (demand)
	prefetch atomic.Bool  // Prefetch: a caller will wait for a token, fetch as for a waiter
	answered atomic.Bool  // the store answered (or failed) a lease request at least once
	kick     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	cfg      PoolConfig
	local    *gcra.Bucket // the local-share fallback
	closeOne sync.Once

	mu sync.Mutex
	// fields below are guarded by mu
	gen        chan struct{} // closed and replaced when tokens arrive or the mode changes
	waiting    int
	members    int
	rate       float64
	retryAfter time.Duration
	closed     bool
}

// NewPool starts a Pool. It makes no store call until the first Take.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.Store == nil {
		return nil, errors.New("levee/fleet: a pool needs a store")
	}
	if math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) || cfg.Rate < 0 {
		return nil, errors.New("levee/fleet: rate must be finite and 0 or more")
	}
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	p := &Pool{
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		cfg:     cfg,
		gen:     make(chan struct{}),
		members: 1,
		rate:    cfg.Rate,
	}
	p.local = gcra.New(false, cfg.Rate, max(cfg.Burst, 1), gcra.DefaultCatchUp)
	p.wg.Add(1)
	go p.run()
	return p, nil
}

// TryTake takes a leased token if one is held. It never blocks and does
// no I/O.
func (p *Pool) TryTake() bool {
	left := p.tokens.take()
	if left < 0 {
		return false
	}
	if left == p.low.Load() {
		p.poke()
	}
	return true
}

// Prefetch starts fetching a lease at once when the Pool holds no token,
// without waiting for it: a caller about to wait on another Pool's store
// call (a per-key limit's key) then waits for both calls side by side,
// one store timeout on a stalled store, not one after the other.
func (p *Pool) Prefetch() {
	if p.tokens.sum() <= 0 {
		p.prefetch.Store(true)
		p.poke()
	}
}

// AwaitFirstLease waits, at most d (0: no bound) and while ctx lasts,
// until the store has answered the Pool's first lease request (tokens,
// none, or a failure). A Pool that has had an answer returns at once. A
// caller that does not wait for tokens (reject mode) calls it for a key
// it has just started, so that the key's first message is judged on the
// key's lease rather than refused for want of one.
func (p *Pool) AwaitFirstLease(ctx context.Context, d time.Duration) {
	if p.answered.Load() {
		return
	}
	var expire <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expire = t.C
	}
	for !p.answered.Load() {
		p.mu.Lock()
		ch, closed := p.gen, p.closed
		p.mu.Unlock()
		if closed || p.answered.Load() {
			return
		}
		p.prefetch.Store(true)
		p.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-expire:
			return
		case <-p.done:
			return
		}
	}
}

// Return gives back a token taken by a Take that returned Granted, when
// the message was not admitted after all (a local limit refused it).
func (p *Pool) Return() { p.tokens.put() }

func (p *Pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Take takes one token. With wait it waits for the next lease, up to
// maxWait (0: no bound) and while ctx lasts; without wait it returns
// Limited at once when no token is held. While the store is failing the
// OnStoreError mode decides (see OnStoreError); with FailClosed a caller
// that waits waits for the store to answer and lease, within the same
// bounds.
func (p *Pool) Take(ctx context.Context, maxWait time.Duration, wait bool) Result {
	if p.TryTake() {
		return Result{Status: Granted}
	}
	return p.slow(ctx, maxWait, wait)
}

func (p *Pool) slow(ctx context.Context, maxWait time.Duration, wait bool) Result {
	var expire <-chan time.Time
	for {
		if p.TryTake() {
			return Result{Status: Granted}
		}
		// FailClosed admits nothing until the store answers: a caller
		// that waits waits for that as for a lease (deferring it at once
		// made a transport without native delay redeliver it at once,
		// a Nack storm for as long as the store was down).
		if p.degraded.Load() && (!wait || p.cfg.OnError != FailClosed) {
			return p.fallback(ctx, maxWait, wait)
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return Result{Status: Closed}
		}
		ch, ra := p.gen, p.retryAfterLocked()
		if !wait {
			p.mu.Unlock()
			// A refusal is demand, as a waiter is: fetch for it. A poke
			// alone left a Pool that had gone idle (its tokens given
			// back) idle, refusing every message for good.
			p.Prefetch()
			return Result{Status: Limited, RetryAfter: ra}
		}
		p.waiting++
		p.mu.Unlock()
		p.poke()
		if maxWait > 0 && expire == nil {
			t := time.NewTimer(maxWait)
			defer t.Stop()
			expire = t.C
		}
		var res *Result
		select {
		case <-ch:
		case <-ctx.Done():
			res = &Result{Status: Canceled}
		case <-expire:
			res = &Result{Status: Limited, RetryAfter: ra}
		case <-p.done:
			res = &Result{Status: Closed}
		}
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
		if res != nil {
			return *res
		}
	}
}

func (p *Pool) retryAfterLocked() time.Duration {
	if p.retryAfter > 0 {
		return p.retryAfter
	}
	return p.cfg.Period
}

// fallback admits by the OnStoreError mode while the store is failing.
func (p *Pool) fallback(ctx context.Context, maxWait time.Duration, wait bool) Result {
	switch p.cfg.OnError {
	case FailOpen:
		p.fbSpent.Add(1)
		return Result{Status: Bypass}
	case FailClosed:
		return Result{Status: Limited, RetryAfter: p.cfg.Period}
	}
	var r gcra.Result
	if wait {
		_, r = p.local.Wait(ctx, float64(maxWait))
	} else {
		_, r = p.local.Try()
	}
	switch r.Status {
	case gcra.Granted:
		p.fbSpent.Add(1)
		return Result{Status: Granted}
	case gcra.Canceled:
		return Result{Status: Canceled}
	case gcra.Closed:
		return Result{Status: Closed}
	}
	ra := time.Duration(r.Wait)
	if math.IsInf(r.Wait, 1) || ra <= 0 {
		ra = p.cfg.Period
	}
	return Result{Status: Limited, RetryAfter: ra}
}

// SetRate changes the fleet rate this replica asks the store for (the
// breaker's drain moves it along its ramp). The store applies it at the
// next lease; while the store is failing, the local-share fallback takes
// its share of it at once (a drain ramp goes on without the store).
func (p *Pool) SetRate(r float64) {
	if math.IsNaN(r) || r < 0 {
		r = 0
	}
	p.mu.Lock()
	p.rate = r
	share := r / float64(max(p.members, 1))
	p.mu.Unlock()
	if p.degraded.Load() {
		p.local.Update(func(s *gcra.State) bool {
			s.Rate = share
			return true
		})
	}
	p.poke()
}

// Rate returns the fleet rate last set with SetRate.
func (p *Pool) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

// Members returns the number of live replicas the store last reported
// (1 before the first lease).
func (p *Pool) Members() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.members
}

// Held returns the tokens held now.
func (p *Pool) Held() int64 { return p.tokens.sum() }

// Degraded reports whether the store is failing and OnError applies.
func (p *Pool) Degraded() bool { return p.degraded.Load() }

// Close stops the Pool's goroutine, gives its unspent tokens back to the
// store (one call, bounded by the store timeout), and fails pending and
// later Takes with Closed once no token is left. It is idempotent.
func (p *Pool) Close() error {
	p.closeOne.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.done)
		p.wg.Wait()
		p.local.Close()
		if p.degraded.Swap(false) {
			p.cfg.Observer.Released(p.cfg.Key)
		}
	})
	return nil
}

// broadcast wakes every waiting Take.
func (p *Pool) broadcast() {
	p.mu.Lock()
	close(p.gen)
	p.gen = make(chan struct{})
	p.mu.Unlock()
}
