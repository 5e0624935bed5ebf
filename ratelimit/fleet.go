package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/hold"
)

// FleetStore is where a fleet limit leases its tokens: a shared GCRA per
// key, run by the store's clock. adapters/fleetredis.Store implements it.
type FleetStore = fleet.LeaseStore

// OnStoreError is what a fleet limit does while its store fails or is
// slower than Fleet.StoreTimeout: StoreLocal, StoreFailOpen or
// StoreFailClosed.
type OnStoreError = fleet.OnStoreError

// The on_store_error modes.
const (
	// StoreLocal (the default) limits the replica to its share of the
	// fleet rate: the rate divided by the last known number of replicas.
	StoreLocal = fleet.Local
	// StoreFailOpen admits without the fleet limit; local limits still
	// apply.
	StoreFailOpen = fleet.FailOpen
	// StoreFailClosed admits nothing until the store answers: in wait
	// mode a message waits for that as for a token (up to max_wait and
	// max_hold, then it is deferred with a *LimitedError); in reject mode
	// it is deferred at once, with a RetryAfter of one lease period.
	StoreFailClosed = fleet.FailClosed
)

// ParseOnStoreError parses "local" (or ""), "fail_open" or "fail_closed";
// another value gives an error wrapping ErrInvalidConfig.
func ParseOnStoreError(s string) (OnStoreError, error) {
	m, err := fleet.ParseOnStoreError(s)
	if err != nil {
		return 0, invalid("on_store_error", `must be "local", "fail_open" or "fail_closed"`, s)
	}
	return m, nil
}

// Fleet is a limit shared by every replica (docs/FLEET.md): each replica
// leases tokens from a GCRA in Store, many per round trip, and spends them
// locally with no I/O on the per-message path; a goroutine fetches the
// next lease before the current one runs out.
type Fleet struct {
	// Store keeps the shared buckets. Required.
	Store FleetStore
	// Key names the shared limit: every replica with the same Key shares
	// Rate. Required, at most 200 bytes.
	Key string
	// Rate is the fleet's limit in messages per second (finite, >= 0).
	Rate float64
	// Burst is the shared bucket's size; it is raised to one lease
	// (Rate x Lease) when smaller. Zero means one lease.
	Burst int
	// Lease is the lease period: a replica's lease holds at most Rate x
	// Lease tokens, sized from Lease's worth of its own demand. Default
	// fleet.DefaultPeriod (200ms).
	Lease time.Duration
	// StoreTimeout bounds one store call, and so the latency a slow or
	// unreachable store can add to a message. Default 50ms.
	StoreTimeout time.Duration
	// OnStoreError is what happens while the store fails. Default
	// StoreLocal.
	OnStoreError OnStoreError
	// PerKeyRate, when positive, adds a fleet limit per key: messages with
	// the same value of metadata PerKeyMetadata share PerKeyRate across the
	// fleet. At most MaxKeys keys are live per replica (default 1000);
	// beyond that a new key drops the least recently used one no message
	// waits on (the one whose last message finished longest ago, found in
	// constant time), and when messages wait on every key a new key uses
	// FallbackKey. A missing value or one longer than MaxKeyLen uses
	// FallbackKey. Each use of FallbackKey is counted in
	// levee.ratelimit.key.fallbacks (reason missing, invalid or overflow).
	PerKeyRate     float64
	PerKeyBurst    int
	PerKeyMetadata string
	MaxKeys        int
	// Member names this replica in the store. Default: host name, process
	// id and a random suffix.
	Member string
}

// DefaultFleetMaxKeys is the default Fleet.MaxKeys.
const DefaultFleetMaxKeys = 1000

// WithFleet adds a fleet-wide limit (see Fleet). It composes with the
// limiter's own rate: a message takes a fleet token and then a local one,
// so a replica exceeds neither. Default: no fleet limit. An invalid Fleet
// makes New fail with ErrInvalidConfig.
func WithFleet(f Fleet) Option {
	return optionFunc(func(c *config) { c.fleet = &f })
}

func (f *Fleet) validate() error {
	switch {
	case f.Store == nil:
		return invalid("fleet.store", "is required", nil)
	case f.Key == "" || len(f.Key) > 200:
		return invalid("fleet.key", "must be 1 to 200 bytes", f.Key)
	case f.Burst < 0 || f.PerKeyBurst < 0:
		return invalid("fleet.burst", "must not be negative", f.Burst)
	case f.Lease < 0 || f.StoreTimeout < 0:
		return invalid("fleet.lease", "durations must not be negative", f.Lease)
	case f.PerKeyRate > 0 && f.PerKeyMetadata == "":
		return invalid("fleet.per_key_metadata", "is required with a per-key fleet rate", nil)
	case f.MaxKeys < 0:
		return invalid("fleet.max_keys", "must not be negative", f.MaxKeys)
	}
	if err := checkRate("fleet.rate", f.Rate); err != nil {
		return err
	}
	return checkRate("fleet.per_key_rate", f.PerKeyRate)
}

// NewMember returns a replica id: host name, process id, random suffix.
func NewMember() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// fleetLimit is a Limiter's fleet part.
type fleetLimit struct {
	pool         *fleet.Pool
	keys         *fleet.Keyed
	meta         string
	ctl          *fleet.Telemetry
	storeTimeout time.Duration
}

func newFleetLimit(f *Fleet, ctl *fleet.Telemetry) (*fleetLimit, error) {
	member := f.Member
	if member == "" {
		member = NewMember()
	}
	base := fleet.PoolConfig{Store: f.Store, Key: f.Key, Member: member, Rate: f.Rate, Burst: f.Burst,
		Period: f.Lease, StoreTimeout: f.StoreTimeout, OnError: f.OnStoreError, Observer: ctl}
	p, err := fleet.NewPool(base)
	if err != nil {
		return nil, invalid("fleet", err.Error(), nil)
	}
	st := f.StoreTimeout
	if st <= 0 {
		st = fleet.DefaultStoreTimeout
	}
	fl := &fleetLimit{pool: p, meta: f.PerKeyMetadata, ctl: ctl, storeTimeout: st}
	if f.PerKeyRate > 0 {
		kc := base
		kc.Key, kc.Rate, kc.Burst = f.Key+":k", f.PerKeyRate, f.PerKeyBurst
		// the limit's own Pool reports an outage, once, not every key's
		kc.Observer = fleet.Inner{Telemetry: ctl}
		n := f.MaxKeys
		if n == 0 {
			n = DefaultFleetMaxKeys
		}
		fl.keys = fleet.NewKeyed(kc, n)
	}
	return fl, nil
}

func (fl *fleetLimit) close() {
	if fl.keys != nil {
		_ = fl.keys.Close()
	}
	_ = fl.pool.Close()
}

// fleetGrant is what a take got: the per-key Pool a token came from (nil
// for none) and whether the fleet Pool granted one (not on fail_open).
type fleetGrant struct {
	kp   *fleet.Pool
	main bool
}

// take takes a per-key fleet token (if any) and a fleet token; undo gives
// back what was granted when a later step refuses the message. why says
// why the message used the per-key fallback key (fbNone when it did not),
// for levee.ratelimit.key.fallbacks.
func (fl *fleetLimit) take(ctx context.Context, msg *message.Message, maxWait time.Duration, wait bool) (g fleetGrant, why fallbackReason, err error) {
	var waitStart time.Time // of the first wait for a lease
	if fl.keys != nil {
		key := msg.Metadata.Get(fl.meta)
		switch {
		case key == "":
			why = fbMissing
		case len(key) > MaxKeyLen:
			key, why = FallbackKey, fbInvalid
		}
		// held while the message waits, so new keys cannot evict it
		e, overflowed := fl.keys.Acquire(key)
		if e == nil {
			return g, why, ErrClosed
		}
		if overflowed {
			why = fbOverflow
		}
		kp := e.Pool()
		t0 := startOf(wait, float64(maxWait))
		r := fleet.Result{Status: fleet.Granted}
		if !kp.TryTake() {
			waitStart = time.Now()
			// the fleet's lease is fetched beside the key's, so that a
			// stalled store adds one store timeout, not two
			fl.pool.Prefetch()
			if !wait {
				// A key this replica has not leased yet (new, or
				// dropped for other keys) waits for its first lease, one
				// round trip: refused for want of one, a key dropped
				// again before its redelivery was refused every time.
				kp.AwaitFirstLease(ctx, fl.firstLeaseWait(maxWait))
			}
			r = kp.Take(ctx, maxWait, wait)
		}
		fl.keys.Release(e)
		if !r.OK() {
			return g, why, fleetErr(ctx, r, wait)
		}
		if r.Status == fleet.Granted {
			g.kp = kp
		}
		// the fleet's token gets what the key's wait left of maxWait
		maxWait = time.Duration(leftOf(float64(maxWait), t0))
	}
	if fl.pool.TryTake() {
		g.main = true
		waitedSince(ctx, waitStart)
		return g, why, nil
	}
	if waitStart.IsZero() {
		waitStart = time.Now()
	}
	r := fl.pool.Take(ctx, maxWait, wait)
	if !r.OK() {
		fl.undo(g)
		return fleetGrant{}, why, fleetErr(ctx, r, wait)
	}
	g.main = r.Status == fleet.Granted
	waitedSince(ctx, waitStart)
	return g, why, nil
}

// waitedSince adds the time since t0 (zero: the tokens were free at once)
// to the delivery's wait account (package hold): a message that waited
// for a fleet lease (or the store) is not a slow call to a slow-call
// breaker further out.
func waitedSince(ctx context.Context, t0 time.Time) {
	if !t0.IsZero() {
		hold.AddWait(ctx, time.Since(t0))
	}
}

// firstLeaseWait bounds a reject-mode wait for a new key's first lease:
// the store timeout (the call's own bound) twice over, for the Pool's
// goroutine to start and the fleet's call beside it, and never more than
// the wait bound (max_wait, max_hold) when there is one.
func (fl *fleetLimit) firstLeaseWait(bound time.Duration) time.Duration {
	d := 2 * fl.storeTimeout
	if bound > 0 {
		d = min(d, bound)
	}
	return d
}

func (fl *fleetLimit) undo(g fleetGrant) {
	if g.main {
		fl.pool.Return()
	}
	if g.kp != nil {
		g.kp.Return()
	}
}

// fleetErr turns a refused fleet Take into the limiter's error.
func fleetErr(ctx context.Context, r fleet.Result, wait bool) error {
	switch r.Status {
	case fleet.Canceled:
		return ctx.Err()
	case fleet.Closed:
		return ErrClosed
	}
	why := reasonMaxWait
	if !wait {
		why = reasonNoToken
	}
	return limited(float64(r.RetryAfter), why)
}

// FleetMembers returns the number of live replicas the fleet store last
// reported for the limiter's fleet limit (0 without one).
func (l *Limiter) FleetMembers() int {
	if l.fleet == nil {
		return 0
	}
	return l.fleet.pool.Members()
}

// FleetHeld returns the fleet tokens this replica holds now (0 without a
// fleet limit): at most one lease.
func (l *Limiter) FleetHeld() int64 {
	if l.fleet == nil {
		return 0
	}
	return l.fleet.pool.Held()
}

// FleetDegraded reports whether the fleet store is failing and
// OnStoreError applies.
func (l *Limiter) FleetDegraded() bool { return l.fleet != nil && l.fleet.pool.Degraded() }
