package batch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/hold"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/telemetry"
)

// Func processes a batch. msgs holds at least one message, in joining order;
// the slice is the func's for the duration of the call only: the Batcher
// reuses it afterwards, so copy it to keep it. The func runs on the
// goroutine of the delivery that filled the batch when a slot is free, and
// on a goroutine of its own otherwise. ctx is the batch
// context: it carries the batch span and is cancelled when Shutdown's
// context ends and when the context of every message of the batch has
// ended. The messages are the func's until it returns: each delivery waits
// for the result, so nothing else modifies them meanwhile.
//
// Returning nil acks every message. Returning an *Errors (possibly wrapped)
// fails only the messages it names. Any other error fails every message
// with that error. After a panic the func is called again on halves of
// the batch until the messages that panic are alone: each of those fails
// with its *levee.PanicError, the others get the later calls' verdicts.
type Func func(ctx context.Context, msgs []*message.Message) error

// Batcher collects the messages delivered to its Handler into batches and
// hands each batch to a Func; every message then returns its own result.
// A Batcher is safe for concurrent use: Handler is meant to be called by
// many deliveries at once. Create it with New and stop it with Close or
// Shutdown.
type Batcher struct {
	fn      Func
	cfg     config
	tracer  trace.Tracer // nil when tracing is off
	inst    *instruments // nil when metrics are off
	base    context.Context
	stopAll context.CancelFunc
	wg      sync.WaitGroup // running batch funcs

	mu       sync.Mutex
	cur      *pending   // guarded by mu: the open batch, or nil
	ready    []*pending // guarded by mu: sealed batches waiting for a slot, oldest first
	inFlight int        // guarded by mu: running batches
	closed   bool       // guarded by mu
	idle     chan struct{}
	isIdle   bool                 // guarded by mu: idle is closed
	attrs    *attrSet             // guarded by mu: resolved from the first message
	linger   *time.Timer          // guarded by mu: flushes the open batch; one timer, reset per batch
	sizeHint int                  // guarded by mu: capacity of a new batch's entries (the last batch's length)
	freeMsgs [][]*message.Message // guarded by mu: msgs slices of finished batch funcs, for reuse
	freeEnts [][]entry            // guarded by mu: entries of batches whose results were all read
	nwake    int                  // wake channels per batch
}

type state uint8

const (
	stateOpen    state = iota // accepting messages
	stateQueued               // sealed, waiting for an in-flight slot
	stateRunning              // the batch func has it
	stateDone                 // results are set; done is closed or about to be
)

// pending is one batch. Its fields are guarded by the Batcher's mu until
// state becomes stateRunning; from then on the run goroutine owns entries
// until it sets stateDone (under mu). After that each delivery reads only
// its own entry, and the last one to read (readers) gives entries back.
type pending struct {
	entries   []entry
	count     int // entries not removed
	bytes     int // payload bytes of those entries
	state     state
	reason    reason
	start     time.Time
	ran       time.Time // when the func started; read only once finished
	holdBy    time.Time // must start by: max_hold, or an earlier delivery's hold; zero for none
	holdTimer *time.Timer
	cancel    context.CancelFunc // set when running
	sent      int                // messages handed to the func
	gaveUp    int                // of those, how many have an ended context
	left      int                // removed entries whose delivery returned without reading a result
	attrs     *attrSet
	readers   atomic.Int32 // set when finished: deliveries yet to read their result

	// Waiting deliveries park on wake[pos%nwake] (several channels, so
	// deliveries parking on different cores do not contend for one
	// channel lock). Closing them wakes everyone: for good when finished
	// is set first, otherwise to let removed entries leave (the others
	// park again on the fresh channels). Replaced under the Batcher's mu.
	wake     [maxWake]chan struct{}
	nwake    int
	finished atomic.Bool

	// watch holds one context.AfterFunc per distinct Done channel of the
	// batch's message contexts (messages of one subscription share one), so
	// a waiting delivery needs no select on its own context. Deliveries
	// whose Done is not among them (more than maxWatch distinct) watch
	// their context themselves.
	watch  [maxWatch]watcher
	nwatch int
}

const (
	maxWake  = 4 // wake channels per batch, at most
	maxWatch = 4 // context watchers per batch, at most
)

type watcher struct {
	done <-chan struct{}
	stop func() bool
}

type entry struct {
	msg *message.Message
	err error
	// done is the Done channel a batch watcher watches for this message,
	// nil when the delivery watches its context itself (or it cannot end).
	done    <-chan struct{}
	pos     int // index in the func's msgs slice
	removed bool
}

// New returns a Batcher that hands batches to fn. Options set the flush
// triggers (WithMaxSize, WithMaxBytes, WithMaxWait), the number of batches
// processed at once (WithMaxInFlight), the hold bound (WithMaxHold) and
// telemetry. A nil fn or an invalid setting returns an error wrapping
// ErrInvalidConfig that names the setting. When WithConcurrency says the
// transport delivers fewer messages at once than max_size, New logs a
// warning: batches can then only flush on max_wait. When WithDedupLease
// gives a dedup lease not above max_wait, New logs a warning: a claim can
// lapse while its message waits in a batch.
func New(fn Func, opts ...Option) (*Batcher, error) {
	cfg := newConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(cfg)
		}
	}
	cfg.check()
	if fn == nil {
		return nil, fmt.Errorf("%w: batch func is nil", ErrInvalidConfig)
	}
	if err := cfg.err(); err != nil {
		return nil, err
	}
	b := &Batcher{fn: fn, cfg: *cfg, idle: make(chan struct{}), sizeHint: min(cfg.maxSize, 64)}
	// One wake channel per core (up to maxWake), and at least 16 messages
	// per channel: waiters parking on several cores at once then rarely
	// contend for one channel's lock.
	b.nwake = max(1, min(runtime.GOMAXPROCS(0), maxWake, cfg.maxSize/16))
	b.base, b.stopAll = context.WithCancel(context.Background())
	if cfg.tp != nil {
		b.tracer = telemetry.Tracer(cfg.tp)
	}
	if cfg.mp != nil {
		inst, err := newInstruments(cfg.mp)
		if err != nil {
			b.stopAll()
			return nil, err
		}
		b.inst = inst
	}
	if w := ConcurrencyWarning(cfg.maxSize, cfg.concurrency); w != "" {
		cfg.logger.Info("WARNING: "+w, watermill.LogFields{
			"max_size": cfg.maxSize, "concurrency": cfg.concurrency, "max_wait": cfg.maxWait,
		})
	}
	if w := DedupLeaseWarning(cfg.dedupLease, cfg.maxWait); w != "" {
		cfg.logger.Info("WARNING: "+w, watermill.LogFields{"dedup_lease": cfg.dedupLease, "max_wait": cfg.maxWait})
	}
	return b, nil
}

// DedupLeaseWarning returns a warning when a deduplicator's claim lease
// is not above the batch's maxWait, and "" otherwise or when lease is zero
// (no deduplicator). New logs it when WithDedupLease is given.
func DedupLeaseWarning(lease, maxWait time.Duration) string {
	if lease <= 0 || lease > maxWait {
		return ""
	}
	return fmt.Sprintf("levee/batch: the dedup lease (%s) is not above the batch's max_wait (%s): a message holds its claim "+
		"while it waits in its batch, so in a batch that does not fill the claim lapses before the func runs, and a duplicate "+
		"delivered meanwhile runs too; set the dedup lease (dedup.WithLease) above max_wait plus the batch func's time (docs/DEDUP.md)",
		lease, maxWait)
}

// ConcurrencyWarning returns a warning when maxSize is larger than the
// number of messages the transport delivers at once (concurrency), and ""
// otherwise or when concurrency is zero (unknown). New logs it when
// WithConcurrency is given; configuration checks may print it too.
func ConcurrencyWarning(maxSize, concurrency int) string {
	if concurrency <= 0 || maxSize <= concurrency {
		return ""
	}
	return fmt.Sprintf("levee/batch: max_size %d is larger than the transport's concurrency %d: "+
		"a batch can never fill and every batch waits max_wait; raise the consumer concurrency "+
		"(adapters) or lower max_size", maxSize, concurrency)
}

// Handler is the handler to register on the router, alone or behind
// per-message middlewares (middleware.Stack(...).Middleware(b.Handler)).
// The message joins the open batch and waits for the batch's result; it
// returns its own result: nil (ack) or an error (Nack, retry or DLQ). It
// produces no messages.
//
// A message whose context ends before its batch is handed to the func
// leaves the batch and returns the context error; it is not passed to the
// func. One whose context ends while the func runs still waits for the
// func's verdict (its outcome is unknown until then); when the contexts of
// all messages of a batch have ended, the func's context is cancelled. A
// message delivered after Close returns ErrClosed.
func (b *Batcher) Handler(msg *message.Message) ([]*message.Message, error) {
	return nil, b.process(msg)
}

// NoPublishHandler is Handler for Router.AddConsumerHandler.
func (b *Batcher) NoPublishHandler(msg *message.Message) error { return b.process(msg) }

func (b *Batcher) process(msg *message.Message) error {
	ctx := msg.Context()
	if err := ctx.Err(); err != nil {
		return err
	}
	size := len(msg.Payload)
	done := ctx.Done()
	var joined time.Time
	acct := hold.Of(ctx) // a slow-call breaker further out: see waited
	if acct != nil {
		joined = time.Now()
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.attrs == nil {
		b.attrs = b.newAttrSet(ctx)
	}
	bt := b.cur
	if bt != nil && b.cfg.maxBytes > 0 && bt.count > 0 && bt.bytes+size > b.cfg.maxBytes {
		b.sealLocked(bt, reasonBytes, false)
		bt = nil
	}
	if bt == nil {
		bt = b.openLocked()
	}
	idx := len(bt.entries)
	var watched <-chan struct{}
	if done != nil && b.watchLocked(bt, ctx, done) {
		watched = done
	}
	bt.entries = append(bt.entries, entry{msg: msg, done: watched})
	bt.count++
	bt.bytes += size
	if d, ok := hold.Deadline(ctx); ok {
		b.holdByLocked(bt, d)
	}
	var run runArgs
	switch {
	case bt.count >= b.cfg.maxSize:
		run = b.sealLocked(bt, reasonSize, true)
	case b.cfg.maxBytes > 0 && bt.bytes >= b.cfg.maxBytes:
		run = b.sealLocked(bt, reasonBytes, true)
	}
	ch := bt.wake[idx%bt.nwake]
	b.mu.Unlock()

	if run.bt != nil {
		// This delivery filled the batch and a slot was free: run the func
		// here rather than on a new goroutine (this delivery waits for the
		// batch anyway), saving a goroutine start and a park and wake.
		b.runInline(ctx, run, done != nil && watched == nil)
		waited(acct, bt, joined)
		return ownEnd(ctx, b.result(bt, idx))
	}
	if watched != nil {
		// A batch watcher ends the wait if the context ends.
		done = nil
	}
	err := b.await(ctx, bt, idx, size, ch, done)
	waited(acct, bt, joined)
	return ownEnd(ctx, err)
}

// waited adds a delivery's wait for its batch to start (from joined, when
// it joined the batch, to the func's start) to its wait account (package
// hold; nil: none), so that a slow-call breaker further out times the
// batch func, not the wait for the batch to fill or for a free slot.
func waited(acct *hold.Waits, bt *pending, joined time.Time) {
	if acct != nil && bt.finished.Load() {
		acct.Add(bt.ran.Sub(joined))
	}
}

// ownEnd gives a delivery whose context ended while the func had it the
// verdict of its own context. Once every message of a running batch gave
// up, the batcher cancels the func's context, and a func that stops then
// returns context.Canceled. That is no shutdown: a delivery whose deadline
// passed (a timeout) gets ErrGaveUp, a failed attempt to the dlq, rather
// than context.Canceled, which the dlq counts as no attempt at all (a batch
// that hangs until every message times out would otherwise be retried
// forever, never dead-lettered; found by the chaos suite). Other results,
// and deliveries whose context was cancelled, are kept.
func ownEnd(ctx context.Context, err error) error {
	if err == nil || !errors.Is(err, context.Canceled) || levee.IsDeferral(err) {
		return err
	}
	own := ctx.Err()
	if own == nil || errors.Is(own, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w (%v; the func returned: %v)", ErrGaveUp, own, err)
}

// leftErr is the result of a delivery whose context ended before the
// func ran: a *LeftError (a deferral: the func never had the message, so
// the delivery is no attempt) wrapping the context's error, or the error
// itself when the context was cancelled (a shutdown, no attempt either).
func leftErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return &LeftError{Err: err}
}
