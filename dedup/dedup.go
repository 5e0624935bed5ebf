package dedup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/internal/trunc"
)

// Dedup is an idempotent-consumer middleware: a message whose identity was
// handled within the window is acked without running the handler, and a
// message whose identity another delivery is handling is deferred, so the
// handler never runs twice at once for one identity. Make one with New.
// Safe for concurrent use. Close it after the router that runs it: it
// waits for the router to settle the messages whose handlers returned
// messages to publish (see Middleware).
type Dedup struct {
	stats   stats
	unsure  unsure
	waiters waiters
	cfg     config
	local   bool // the store ignores contexts: no deadline to build
	tx      bool // the store is a TxStore: put a Ticket in the context
	ins     *instruments
}

// New returns a Dedup. Every invalid option is reported in one error that
// wraps ErrInvalidConfig.
func New(opts ...Option) (*Dedup, error) {
	cfg := newConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	if cfg.store == nil {
		s, err := NewMemStore(DefaultMaxKeys)
		if err != nil {
			return nil, err
		}
		cfg.store = s
	}
	ins, err := newInstruments(cfg.mp)
	if err != nil {
		return nil, fmt.Errorf("levee/dedup: metrics: %w", err)
	}
	d := &Dedup{cfg: cfg, ins: ins}
	d.waiters.stop = make(chan struct{})
	_, d.local = cfg.store.(*MemStore)
	_, d.tx = cfg.store.(TxStore)
	return d, nil
}

// Stats counts what a Dedup did since New, the same events as its
// metrics.
type Stats struct {
	Duplicates    uint64 // acked without running the handler
	Waited        uint64 // deferred: the identity was in progress elsewhere
	LeaseExpiries uint64 // claims taken over after their lease ended
	StoreErrors   uint64 // failed store calls
}

type stats [numCounters]atomic.Uint64

// Stats returns the counts so far. Safe for concurrent use.
func (d *Dedup) Stats() Stats {
	return Stats{Duplicates: d.stats[cDuplicates].Load(), Waited: d.stats[cWaited].Load(),
		LeaseExpiries: d.stats[cLeaseExpiries].Load(), StoreErrors: d.stats[cStoreErrors].Load()}
}

// Store returns the store in use.
func (d *Dedup) Store() Store { return d.cfg.store }

// Lease returns the claim lease.
func (d *Dedup) Lease() time.Duration { return d.cfg.lease }

// Window returns how long a done identity is remembered.
func (d *Dedup) Window() time.Duration { return d.cfg.window }

// Middleware returns next wrapped with deduplication:
//
//   - a message without an identity fails with an error wrapping ErrNoKey
//     (class "validation": dead-lettered at once);
//   - the identity is claimed for the lease; if the store fails, the
//     message is deferred (a levee.Deferral wrapping ErrStore), unless
//     the store's error declares the class "validation" (it refuses the
//     key itself): then the message fails with an error wrapping
//     ErrKeyRefused and the store's error (class "validation":
//     dead-lettered at once);
//   - a duplicate of a done identity returns nil without calling next: the
//     message is acked, no attempt, no breaker outcome;
//   - an identity held by a live claim is deferred (a levee.Deferral
//     wrapping ErrInProgress, RetryAfter at most the busy retry);
//   - otherwise next runs; on success the identity is marked done (unless
//     the handler settled a Ticket in its transaction), on any error or
//     deferral the claim is released so that the retry can claim it. A
//     handler that Nacks the message itself and returns nil has not
//     succeeded (the broker redelivers it): the claim is released, and
//     the nil is returned as it came. A handler that returns messages
//     (which Watermill's router publishes after the chain returned, and
//     Nacks the message when that publish fails) has its identity marked
//     done once the router acks the message, its claim released if the
//     router Nacks it, so a failed publish is redelivered and run again
//     rather than acked as a duplicate with its output lost.
//
// An identity other than the UUID is written as levee.KeyDedupID on a
// message that is not acked (so its dead letter keeps it), never before
// next runs, and a KeyDedupID the key function gives anyway is removed
// while next runs: metadata a handler copies onto the messages it
// publishes carries no identity to a deduplicating consumer downstream.
//
// A failed done mark or release after next ran is logged and counted, and
// the handler's result stands: at-least-once is kept, and the claim ends
// by its lease. A claim whose answer was lost (a store error: it may have
// taken effect) and a release that failed are remembered (at most 1,024
// identities), and released before this Dedup claims the identity again,
// so its redelivery here does not wait out the lease.
func (d *Dedup) Middleware(next message.HandlerFunc) message.HandlerFunc {
	attrs := new(atomic.Pointer[handlerAttrs])
	return func(msg *message.Message) (out []*message.Message, err error) {
		id, fromFn, err := identity(msg, d.cfg.key)
		if err != nil {
			return nil, err
		}
		// The handler never sees an identity its key function gives
		// anyway: it could copy it onto the messages it publishes, where
		// it would win over a downstream key function and make distinct
		// messages duplicates. A message that is not acked here (a
		// failure, a deferral, a panic) carries it again, so its dead
		// letter, and the letter's replay, keep the identity.
		keep := fromFn && id != msg.UUID
		if fromFn && msg.Metadata[levee.KeyDedupID] != "" {
			// A replay's fallback identity that the key overrode (see
			// identity): not the handler's to forward either.
			delete(msg.Metadata, levee.KeyDedupID)
		}
		if !fromFn && d.redundant(msg, id) {
			delete(msg.Metadata, levee.KeyDedupID)
			keep = true
		}
		acked := false
		if keep {
			defer func() {
				if !acked {
					setIdentity(msg, id)
				}
			}()
		}
		out, acked, err = d.handle(msg, next, id, attrs)
		return out, err
	}
}

// redundant reports whether the key function gives id, the identity a
// message carries in levee.KeyDedupID.
func (d *Dedup) redundant(msg *message.Message, id string) bool {
	v, err := d.cfg.key(msg)
	return err == nil && v == id
}

// setIdentity writes id as the message's levee.KeyDedupID.
func setIdentity(msg *message.Message, id string) {
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	msg.Metadata[levee.KeyDedupID] = id
}

// handle claims id and runs next under the claim. acked reports whether
// the message ends acked: a duplicate, or next succeeded.
func (d *Dedup) handle(msg *message.Message, next message.HandlerFunc, id string, attrs *atomic.Pointer[handlerAttrs]) (out []*message.Message, acked bool, err error) {
	ctx := msg.Context()
	token := rand.Uint64()
	key := StoreKey(d.cfg.namespace, id)
	c, err := d.claimAfterUnsure(ctx, key, token)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The delivery was called off (a shutdown), not failed by the
		// store: handed back with the context's error, as the other
		// layers do, and no store error counted.
		return nil, false, fmt.Errorf("levee/dedup: claim %q: %w", key, ctx.Err())
	}
	if err != nil {
		d.count(ctx, attrs, msg, cStoreErrors)
		if levee.ClassOf(err) == levee.ClassValidation {
			// The store refuses the key itself: every redelivery
			// would fail the same way, so it is no outage to wait out.
			return nil, false, &refusedError{key: key, err: err}
		}
		return nil, false, levee.Defer(d.cfg.busyRetry, fmt.Errorf("%w: claim %q: %w", ErrStore, key, err))
	}
	switch c.Status {
	case StatusDone:
		d.count(ctx, attrs, msg, cDuplicates)
		telemetry.AddDedupEvent(ctx, telemetry.EventDedupDuplicate, 0)
		return nil, true, nil
	case StatusBusy:
		d.count(ctx, attrs, msg, cWaited)
		after := d.cfg.busyRetry
		if c.Remaining > 0 && c.Remaining < after {
			after = c.Remaining
		}
		telemetry.AddDedupEvent(ctx, telemetry.EventDedupInProgress, after)
		return nil, false, levee.Defer(after, ErrInProgress)
	case StatusClaimed:
	default:
		return nil, false, levee.Defer(d.cfg.busyRetry, fmt.Errorf("%w: claim %q: unknown status %d", ErrStore, key, c.Status))
	}
	if c.TookOver {
		d.count(ctx, attrs, msg, cLeaseExpiries)
	}
	out, t, herr := d.run(ctx, next, msg, key, token)
	// A handler that Nacked the message itself and returned nil: the
	// broker redelivers it, and that redelivery must run, not be acked as
	// a duplicate of a done identity.
	nacked := herr == nil && (t == nil || !t.Settled()) && telemetry.HandlerNacked(msg)
	if herr != nil || nacked {
		if err := d.finish(ctx, key, token, false); err != nil {
			d.count(ctx, attrs, msg, cStoreErrors)
			d.unsure.add(key, token)
			d.log("release failed; the next claim from this process releases it, else it ends with its lease", key, err)
		}
		return out, false, herr
	}
	if t != nil && t.Settled() {
		return out, true, nil
	}
	if len(out) > 0 {
		d.finishWhenSettled(ctx, msg, key, token, attrs)
		return out, true, nil
	}
	if err := d.finish(ctx, key, token, true); err != nil {
		d.count(ctx, attrs, msg, cStoreErrors)
		d.log("done mark failed; a duplicate after the lease will run again", key, err)
	}
	return out, true, nil
}

// run calls next, with the Ticket in the context for a TxStore, and
// restores the context. If next panics, the claim is released while the
// panic goes on unchanged (nothing recovers it here, so its stack stays
// intact for the recover slot).
func (d *Dedup) run(ctx context.Context, next message.HandlerFunc, msg *message.Message, key string, token uint64) (out []*message.Message, t *Ticket, err error) {
	if d.tx {
		t = &Ticket{key: key, token: token, window: d.cfg.window}
		msg.SetContext(context.WithValue(ctx, ticketKey{}, t))
	}
	returned := false
	defer func() {
		if t != nil {
			msg.SetContext(ctx)
		}
		if !returned {
			if err := d.finish(ctx, key, token, false); err != nil {
				d.unsure.add(key, token)
				d.log("release after a panic failed; the next claim from this process releases it, else it ends with its lease", key, err)
			}
		}
	}()
	out, err = next(msg)
	returned = true
	return out, t, err
}

func (d *Dedup) count(ctx context.Context, attrs *atomic.Pointer[handlerAttrs], msg *message.Message, which int) {
	d.stats[which].Add(1)
	d.ins.count(ctx, attrs, msg, which)
}

// claimAfterUnsure claims key, first releasing the claim this process may
// hold on it without knowing it (see unsure). A release that fails leaves
// that claim unsure and is the claim's error: the store is failing, and a
// claim after it would add a second store timeout to the message.
func (d *Dedup) claimAfterUnsure(ctx context.Context, key string, token uint64) (Claim, error) {
	if old, ok := d.unsure.take(key); ok {
		if err := d.finish(ctx, key, old, false); err != nil {
			d.unsure.add(key, old)
			return Claim{}, fmt.Errorf("release an earlier claim: %w", err)
		}
	}
	c, err := d.claim(ctx, key, token)
	if err != nil && levee.ClassOf(err) != levee.ClassValidation {
		d.unsure.add(key, token) // the claim may have taken effect
	}
	return c, err
}

func (d *Dedup) claim(ctx context.Context, key string, token uint64) (Claim, error) {
	if d.local {
		return d.cfg.store.Claim(ctx, key, token, d.cfg.lease)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.storeTimeout)
	defer cancel()
	return d.cfg.store.Claim(ctx, key, token, d.cfg.lease)
}

// finish marks done (ok) or releases the claim. It outlives the message
// context's cancellation: a handler that succeeded must leave its mark.
func (d *Dedup) finish(ctx context.Context, key string, token uint64, ok bool) error {
	if !d.local {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), d.cfg.storeTimeout)
		defer cancel()
	}
	if ok {
		return d.cfg.store.Done(ctx, key, token, d.cfg.window)
	}
	return d.cfg.store.Release(ctx, key, token)
}

func (d *Dedup) log(msg, key string, err error) {
	if d.cfg.logger != nil {
		d.cfg.logger.Error("levee/dedup: "+msg, trunc.LogError(err), watermill.LogFields{"dedup_key": trunc.Log(key), "dedup": d.cfg.name})
	}
}
