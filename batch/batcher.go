package batch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
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
// with that error. A panic fails every message with a *PanicError.
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
// warning: batches can then only flush on max_wait.
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
	return b, nil
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

// NoPublishHandler is Handler for Router.AddNoPublisherHandler.
func (b *Batcher) NoPublishHandler(msg *message.Message) error { return b.process(msg) }

func (b *Batcher) process(msg *message.Message) error {
	ctx := msg.Context()
	if err := ctx.Err(); err != nil {
		return err
	}
	size := len(msg.Payload)
	done := ctx.Done()

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
		return ownEnd(ctx, b.result(bt, idx))
	}
	if watched != nil {
		// A batch watcher ends the wait if the context ends.
		done = nil
	}
	return ownEnd(ctx, b.await(ctx, bt, idx, size, ch, done))
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

// await waits for the result of entry idx of bt, parking on ch. self is
// the delivery's Done channel when it watches its own context (no batch
// watcher covers it), nil otherwise.
func (b *Batcher) await(ctx context.Context, bt *pending, idx, size int, ch, self <-chan struct{}) error {
	for {
		if self == nil {
			<-ch
		} else {
			select {
			case <-ch:
			case <-self:
				self = nil
				var err error
				var over bool
				if ch, err, over = b.giveUp(ctx, bt, idx, size); over {
					return err
				}
				continue
			}
		}
		if bt.finished.Load() {
			return b.result(bt, idx)
		}
		// Woken so that entries a watcher removed can leave: this one's
		// own, or someone else's (then wait again on the fresh channel).
		b.mu.Lock()
		if bt.state == stateDone {
			b.mu.Unlock()
			return b.result(bt, idx)
		}
		if e := &bt.entries[idx]; e.removed {
			err := e.err
			bt.left++
			b.mu.Unlock()
			return err
		}
		ch = bt.wake[idx%bt.nwake]
		b.mu.Unlock()
	}
}

// giveUp handles the end of the context of a delivery that watches its
// own: it leaves a batch that has not started (over, with the context
// error) or, when the func has the message, counts as given up and returns
// the channel to wait on for the verdict.
func (b *Batcher) giveUp(ctx context.Context, bt *pending, idx, size int) (<-chan struct{}, error, bool) {
	b.mu.Lock()
	switch bt.state {
	case stateDone:
		b.mu.Unlock()
		return nil, b.result(bt, idx), true
	case stateOpen, stateQueued:
		bt.left++
		b.removeLocked(bt, idx, size)
		b.inst.left(bt.attrs, leftCanceled, 1)
		b.mu.Unlock()
		return nil, leftErr(ctx.Err()), true
	}
	// The func has the message: its outcome is unknown until the func
	// returns, so wait for it rather than Nack (the message could be written
	// and then redelivered) or ack (it might not be written). Returning now
	// would also let outer middlewares (retry, dead-lettering) modify the
	// message while the func reads it. Once every message of the batch has
	// given up, the func's context is cancelled, which bounds this wait.
	bt.giveUpLocked(1)
	ch := bt.wake[idx%bt.nwake]
	b.mu.Unlock()
	return ch, nil, false
}

// watchLocked makes sure a batch watcher covers done (the Done channel of
// ctx) and reports whether one does: false when the batch already has
// maxWatch watchers for other channels.
func (b *Batcher) watchLocked(bt *pending, ctx context.Context, done <-chan struct{}) bool {
	for i := range bt.nwatch {
		if bt.watch[i].done == done {
			return true
		}
	}
	if bt.nwatch == maxWatch {
		return false
	}
	bt.watch[bt.nwatch] = watcher{done: done, stop: context.AfterFunc(ctx, func() { b.ctxEnded(bt, done, ctx) })}
	bt.nwatch++
	return true
}

// ctxEnded runs when the context behind a batch watcher ends: the messages
// waiting on it leave a batch that has not started, or count as given up
// when the func has them.
func (b *Batcher) ctxEnded(bt *pending, done <-chan struct{}, ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch bt.state {
	case stateOpen, stateQueued:
		err := leftErr(ctx.Err())
		n := 0
		for i := range bt.entries {
			e := &bt.entries[i]
			if e.removed || e.done != done {
				continue
			}
			e.removed = true
			e.err = err
			bt.count--
			bt.bytes -= len(e.msg.Payload)
			e.msg = nil
			n++
		}
		if n == 0 {
			return
		}
		b.inst.left(bt.attrs, leftCanceled, n)
		if bt.count == 0 && bt.state == stateOpen {
			b.failLocked(bt, nil)
			b.checkIdleLocked()
			return
		}
		// Wake everyone: the removed leave, the others park again.
		old := bt.wake
		for i := range bt.nwake {
			bt.wake[i] = make(chan struct{})
			close(old[i])
		}
	case stateRunning:
		n := 0
		for i := range bt.entries {
			if e := &bt.entries[i]; !e.removed && e.done == done {
				n++
			}
		}
		bt.giveUpLocked(n)
	}
}

// giveUpLocked counts n messages of a running batch whose context ended;
// once all of them have, the func's context is cancelled.
func (bt *pending) giveUpLocked(n int) {
	bt.gaveUp += n
	if bt.gaveUp >= bt.sent {
		bt.cancel()
	}
}

// settleLocked marks a batch done (its results are set) and stops its
// watchers. It returns the wake channels, which the caller closes once
// finished is set.
func (b *Batcher) settleLocked(bt *pending) [maxWake]chan struct{} {
	bt.readers.Store(int32(len(bt.entries) - bt.left))
	bt.state = stateDone
	for i := range bt.nwatch {
		bt.watch[i].stop()
		bt.watch[i] = watcher{}
	}
	bt.nwatch = 0
	return bt.wake
}

// wakeAll ends every wait on a settled batch.
func wakeAll(bt *pending, wake [maxWake]chan struct{}) {
	bt.finished.Store(true)
	for i := range bt.nwake {
		close(wake[i])
	}
}

// result returns the result of entry idx of a done batch. The last delivery
// to read its result gives the batch's entries back for reuse: nothing else
// reads them once the batch is finished.
func (b *Batcher) result(bt *pending, idx int) error {
	err := bt.entries[idx].err
	if bt.readers.Add(-1) == 0 {
		ents := bt.entries
		bt.entries = nil
		clear(ents)
		b.mu.Lock()
		if len(b.freeEnts) <= b.cfg.maxInFlight {
			b.freeEnts = append(b.freeEnts, ents[:0])
		}
		b.mu.Unlock()
	}
	return err
}

// entriesLocked returns an empty entries slice for a new batch.
func (b *Batcher) entriesLocked() []entry {
	if k := len(b.freeEnts); k > 0 {
		s := b.freeEnts[k-1]
		b.freeEnts[k-1] = nil
		b.freeEnts = b.freeEnts[:k-1]
		return s
	}
	return make([]entry, 0, b.sizeHint)
}

// openLocked starts a new open batch with its linger (and hold) timer.
func (b *Batcher) openLocked() *pending {
	bt := &pending{
		entries: b.entriesLocked(),
		state:   stateOpen,
		start:   time.Now(),
		attrs:   b.attrs,
		nwake:   b.nwake,
	}
	for i := range bt.nwake {
		bt.wake[i] = make(chan struct{})
	}
	if b.linger == nil {
		b.linger = time.AfterFunc(b.cfg.maxWait, b.lingered)
	} else {
		b.linger.Reset(b.cfg.maxWait)
	}
	if b.cfg.maxHold > 0 {
		bt.holdTimer = time.AfterFunc(b.cfg.maxHold, func() { b.held(bt) })
	}
	b.cur = bt
	return bt
}

// lingered flushes the open batch once max_wait has passed since its first
// message. The timer is shared by successive batches: a run left over from
// an earlier batch finds the current one too young and does nothing (the
// timer was reset for it).
func (b *Batcher) lingered() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bt := b.cur; bt != nil && time.Since(bt.start) >= b.cfg.maxWait {
		b.sealLocked(bt, reasonWait, false)
	}
}

// held fails a batch that did not start within max hold.
func (b *Batcher) held(bt *pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bt.state != stateOpen && bt.state != stateQueued {
		return
	}
	herr := &HoldError{Held: time.Since(bt.start), After: b.cfg.maxWait}
	b.inst.left(bt.attrs, leftMaxHold, bt.count)
	if bt.state == stateQueued {
		for i, q := range b.ready {
			if q == bt {
				b.ready = append(b.ready[:i], b.ready[i+1:]...)
				break
			}
		}
	}
	b.failLocked(bt, herr)
	b.checkIdleLocked()
}

// failLocked settles every waiting message of a batch that never ran.
func (b *Batcher) failLocked(bt *pending, err error) {
	if b.cur == bt {
		b.cur = nil
		stopTimer(b.linger)
	}
	stopTimer(bt.holdTimer)
	for i := range bt.entries {
		if !bt.entries[i].removed {
			bt.entries[i].err = err
		}
	}
	wakeAll(bt, b.settleLocked(bt))
}

// removeLocked takes a message that stopped waiting out of a batch that has
// not started.
func (b *Batcher) removeLocked(bt *pending, idx, size int) {
	e := &bt.entries[idx]
	e.removed = true
	e.msg = nil
	bt.count--
	bt.bytes -= size
	if bt.count == 0 && bt.state == stateOpen {
		// Nobody is left: drop the batch. A queued empty batch is skipped
		// when its turn comes.
		b.failLocked(bt, nil)
		b.checkIdleLocked()
	}
}

// sealLocked closes a batch to new messages and queues it for a slot. With
// inline, a caller whose message is in bt asks to run bt itself: when bt
// gets a slot right away, sealLocked returns its run instead of starting a
// goroutine, and the caller must pass it to runInline.
func (b *Batcher) sealLocked(bt *pending, r reason, inline bool) runArgs {
	if b.cur == bt {
		b.cur = nil
		stopTimer(b.linger)
	}
	b.sizeHint = min(max(len(bt.entries), 1), b.cfg.maxSize)
	bt.state = stateQueued
	bt.reason = r
	b.ready = append(b.ready, bt)
	if inline {
		return b.dispatchLocked(bt)
	}
	b.dispatchLocked(nil)
	return runArgs{}
}

// runArgs is a batch handed to the func; bt is nil for none.
type runArgs struct {
	bt   *pending
	ctx  context.Context
	msgs []*message.Message
	ctxs []context.Context
}

// dispatchLocked starts queued batches while slots are free. When inline is
// among them, its run is returned instead of being started on a goroutine.
func (b *Batcher) dispatchLocked(inline *pending) runArgs {
	var mine runArgs
	for b.inFlight < b.cfg.maxInFlight && len(b.ready) > 0 {
		bt := b.ready[0]
		b.ready[0] = nil
		b.ready = b.ready[1:]
		stopTimer(bt.holdTimer)
		if bt.count == 0 {
			b.failLocked(bt, nil)
			continue
		}
		msgs := b.msgsLocked(bt.count)
		var ctxs []context.Context
		if b.tracer != nil {
			// Read message contexts here, while every message still waits:
			// once one gives up, a middleware may replace its context.
			ctxs = make([]context.Context, 0, bt.count)
		}
		for i := range bt.entries {
			e := &bt.entries[i]
			if e.removed {
				continue
			}
			e.pos = len(msgs)
			msgs = append(msgs, e.msg)
			if ctxs != nil {
				ctxs = append(ctxs, e.msg.Context())
			}
		}
		bt.sent = len(msgs)
		var ctx context.Context
		ctx, bt.cancel = context.WithCancel(b.base)
		bt.state = stateRunning
		b.inFlight++
		b.wg.Add(1)
		if bt == inline {
			mine = runArgs{bt: bt, ctx: ctx, msgs: msgs, ctxs: ctxs}
			continue
		}
		go b.run(ctx, bt, msgs, ctxs)
	}
	b.checkIdleLocked()
	return mine
}

// msgsLocked returns an empty slice for a batch of n messages, reusing one
// a finished batch func gave back.
func (b *Batcher) msgsLocked(n int) []*message.Message {
	if k := len(b.freeMsgs); k > 0 {
		s := b.freeMsgs[k-1]
		b.freeMsgs[k-1] = nil
		b.freeMsgs = b.freeMsgs[:k-1]
		if cap(s) >= n {
			return s
		}
	}
	return make([]*message.Message, 0, n)
}

// runInline runs a batch on the delivery that filled it. That delivery
// cannot watch its context while the func runs; when no batch watcher
// covers it (self), a context.AfterFunc counts it as given up if its
// context ends meanwhile, exactly as a waiting delivery would.
func (b *Batcher) runInline(ctx context.Context, r runArgs, self bool) {
	if self {
		bt := r.bt
		stop := context.AfterFunc(ctx, func() {
			b.mu.Lock()
			if bt.state == stateRunning {
				bt.giveUpLocked(1)
			}
			b.mu.Unlock()
		})
		defer stop()
	}
	b.run(r.ctx, r.bt, r.msgs, r.ctxs)
}

func (b *Batcher) checkIdleLocked() {
	if b.closed && !b.isIdle && b.cur == nil && b.inFlight == 0 && len(b.ready) == 0 {
		b.isIdle = true
		close(b.idle)
	}
}

// run calls the batch func and settles every message of the batch.
func (b *Batcher) run(ctx context.Context, bt *pending, msgs []*message.Message, ctxs []context.Context) {
	defer b.wg.Done()
	start := time.Now()
	var span trace.Span
	if b.tracer != nil {
		ctx, span = b.startSpan(ctx, bt, ctxs)
	}
	err := b.call(ctx, msgs)
	errs, out, all := resolve(msgs, err)
	if span != nil {
		endSpan(span, out, err)
	}
	b.inst.batch(bt.attrs, bt.reason, out, len(msgs), time.Since(start))
	if out == outcomePanic {
		b.cfg.logger.Error("levee/batch: batch func panicked", err, watermill.LogFields{"batch_size": len(msgs)})
	}

	// The entries are this goroutine's while the batch runs (nothing removes
	// an entry of a running batch), so results are set outside the lock.
	if errs != nil || all != nil {
		for i := range bt.entries {
			if e := &bt.entries[i]; !e.removed {
				if errs != nil {
					e.err = errs[e.pos]
				} else {
					e.err = all
				}
			}
		}
	}
	clear(msgs)

	b.mu.Lock()
	cancel := bt.cancel
	wake := b.settleLocked(bt) // a waiter whose context ends from now on reads its result
	b.inFlight--
	if len(b.freeMsgs) < b.cfg.maxInFlight {
		b.freeMsgs = append(b.freeMsgs, msgs[:0])
	}
	b.dispatchLocked(nil)
	b.mu.Unlock()
	// Wake the waiters outside the lock: closing readies every one of them.
	wakeAll(bt, wake)
	cancel()
}

// call runs the batch func, turning a panic into a *PanicError.
func (b *Batcher) call(ctx context.Context, msgs []*message.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return b.fn(ctx, msgs)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
