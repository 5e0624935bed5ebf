package dlq

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/hold"
	"github.com/levee-dev/levee/internal/idkey"
	"github.com/levee-dev/levee/internal/trunc"
)

// Retrier is the middleware of the dlq slot. It owns retry and
// dead-lettering together, so their order cannot be got wrong: a failed
// handler is classified; a transient error is retried in place with
// exponential backoff and full jitter; a permanent, validation or panic
// error, or a transient one past the retry budget (class exhausted), is
// published to the dead-letter topic, and only when that publish returned
// nil is the original acked. Everything else (a failed DLQ publish, a
// cancelled context, a wait beyond max hold) returns an error, so the router
// Nacks and the message is redelivered: nothing is dropped.
//
// A Retrier is safe for concurrent use; one Retrier may wrap any number of
// handlers. It starts no goroutine and needs no Close.
type Retrier struct {
	pub   message.Publisher
	cfg   config
	table *attemptTable
	ins   instruments
	// origin tells the project's frames of a panic's stack from Levee's
	// and its dependencies'.
	origin origin
}

// New returns a Retrier that publishes dead letters with publisher. It
// returns an error wrapping ErrInvalidConfig for a nil publisher or an
// invalid option (see each option), and the meter's error if an instrument
// cannot be created.
func New(publisher message.Publisher, opts ...Option) (*Retrier, error) {
	if publisher == nil {
		return nil, fieldErr("publisher", "must not be nil")
	}
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ins, err := newInstruments(cfg.meterProvider)
	if err != nil {
		return nil, fmt.Errorf("levee/dlq: instruments: %w", err)
	}
	return &Retrier{pub: publisher, cfg: cfg, table: newAttemptTable(cfg.tableSize, cfg.tableTTL), ins: ins, origin: newOrigin()}, nil
}

// Backoff returns the retry policy in use.
func (r *Retrier) Backoff() Backoff { return r.cfg.backoff }

// Label describes the configuration for middleware.Stack.SetLabeled, e.g.
// "topic=<topic>.dlq attempts=5 backoff=100ms..10s x2".
func (r *Retrier) Label() string {
	b := r.cfg.backoff
	topic := r.cfg.topic
	switch {
	case topic != "":
	case r.cfg.topicFunc != nil:
		topic = "func"
	default:
		topic = "<topic>.dlq"
	}
	s := fmt.Sprintf("topic=%s attempts=%d backoff=%s..%s x%g", topic, b.MaxAttempts, b.Initial, b.Max, b.Multiplier)
	if b.MaxElapsed > 0 {
		s += fmt.Sprintf(" max_elapsed=%s", b.MaxElapsed)
	}
	if r.cfg.maxHold > 0 {
		s += fmt.Sprintf(" max_hold=%s", r.cfg.maxHold)
	}
	if r.cfg.maxDeferred > 0 {
		s += fmt.Sprintf(" max_deferred=%s", r.cfg.maxDeferred)
	}
	if r.cfg.attemptStore != nil {
		s += " attempts=shared"
	}
	return s
}

// Middleware wraps next; pass it to message.Router.AddMiddleware,
// Handler.AddMiddleware or the Stack's dlq slot. The success path costs two
// atomic loads (plus a clock read with WithMaxHold) and allocates nothing.
// A letter names next's definition (KeyCodeLocation) when next is the
// service's handler itself; inside a middleware.Stack, MiddlewareFor is
// called instead.
func (r *Retrier) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return r.MiddlewareFor(next, next)
}

// MiddlewareFor is Middleware for the handler chain next that ends in
// handler, the service's handler function (any func type; nil or anything
// else when unknown): every dead letter names handler's definition,
// "pkg.Func (file:line)", in KeyCodeLocation unless a panic's stack names
// a closer frame. It makes a Retrier a middleware.HandlerAware, so a
// middleware.Stack (and config, which builds one per handler) passes it
// the handler below its other layers. The location is resolved here, once;
// the success path is Middleware's.
func (r *Retrier) MiddlewareFor(next message.HandlerFunc, handler any) message.HandlerFunc {
	w := &wrapped{r: r, next: next, location: funcLocation(handler, r.origin)}
	return w.handle
}

// wrapped is one Middleware(next) wrapper; it resolves the handler name and
// topic, and their metric attributes, on its first failure.
type wrapped struct {
	r     *Retrier
	next  message.HandlerFunc
	names atomic.Pointer[names]
	// location is where the service's handler is defined when it is the
	// project's code (not a Levee layer or a Watermill adapter), for
	// KeyCodeLocation; "" when unknown.
	location string
}

type names struct {
	handler, topic string
	attrs          *handlerAttrs
}

func (w *wrapped) resolve(msg *message.Message) *names {
	if n := w.names.Load(); n != nil {
		return n
	}
	ctx := msg.Context()
	h, t := message.HandlerNameFromCtx(ctx), message.SubscribeTopicFromCtx(ctx)
	n := &names{handler: h, topic: t, attrs: newHandlerAttrs(h, t)}
	if w.names.CompareAndSwap(nil, n) {
		return n
	}
	return w.names.Load()
}

func (w *wrapped) handle(msg *message.Message) ([]*message.Message, error) {
	r := w.r
	var start time.Time // the delivery's arrival, for max hold only
	if r.cfg.maxHold > 0 {
		start = time.Now()
	}
	// An empty table (the usual case) costs its two size loads here and
	// nothing on success: there is nothing of this message to forget. Nor
	// is there when the table holds only other messages. (A concurrent
	// duplicate that fails meanwhile keeps its record, as if it had failed
	// after this success.)
	pending := r.table.len() > 0
	known := false // the table has a record of the message
	if pending {
		if start.IsZero() {
			start = time.Now()
		}
		var out []*message.Message
		var done bool
		var err error
		if known, out, done, err = w.waitPending(msg, start); done {
			return out, err
		}
	}
	if !known && r.cfg.attemptStore != nil {
		if out, done, err := w.spentBefore(msg); done {
			return out, err
		}
	}
	out, err := w.attempt(msg)
	if err == nil {
		if known {
			w.forget(msg)
		}
		return out, nil
	}
	return w.settle(msg, err, start)
}

// recordHold records the delivery's hold deadline (it started at start)
// before the handler chain runs after a wait: the chain's own waits
// (breaker, priority, rate limit) take what is left of it.
func (w *wrapped) recordHold(msg *message.Message, start time.Time) {
	if maxHold := w.r.cfg.maxHold; maxHold > 0 {
		hold.Record(msg, start.Add(maxHold))
	}
}

// key is the message's key in the attempt table (see idkey.Message).
func (w *wrapped) key(msg *message.Message) tableKey {
	return tableKey{w: w, uuid: idkey.Message(msg)}
}

// attempt runs the validator, if any, then the handler chain. A message
// the transport could not decode (levee.KeyUndecodable) fails validation
// without either.
func (w *wrapped) attempt(msg *message.Message) ([]*message.Message, error) {
	if len(msg.Metadata) > 0 {
		if reason, ok := msg.Metadata[levee.KeyUndecodable]; ok {
			return nil, WithClass(fmt.Errorf("%w: %s", levee.ErrUndecodable, reason), ClassValidation)
		}
	}
	if v := w.r.cfg.validator; v != nil {
		if err := v(message.SubscribeTopicFromCtx(msg.Context()), msg.Payload); err != nil {
			var c levee.Classed
			if !errors.As(err, &c) {
				err = WithClass(err, ClassValidation)
			}
			return nil, err
		}
	}
	return call(w.next, msg)
}

func (w *wrapped) classify(err error) Class {
	if f := w.r.cfg.classifier; f != nil {
		if c := f(err); c != "" {
			return normalize(c)
		}
	}
	return Classify(err)
}

// delivery is what settle knows of one delivery's history: the table
// record (attempts and deferrals of earlier deliveries) and, once the first
// attempt failed, the attempt count and the first failure.
type delivery struct {
	rec      record
	counted  bool      // attempt and first are set
	attempt  int       // attempts made, the last one included
	first    time.Time // first failure
	deferred bool      // this delivery ended a call in a deferral
	made     int       // failed attempts in this delivery
}

// settle drives a delivery whose call returned err to its end: a deferral
// (levee.Deferral: a layer further in declined to run the handler) is
// waited in process when it fits in the max hold and Nacked otherwise, and
// never counts as an attempt; a failed attempt is classified, retried with
// backoff or dead-lettered. It is one loop because either may follow the
// other within one delivery (a retry can be deferred by an opening breaker,
// a deferred call can fail).
func (w *wrapped) settle(msg *message.Message, err error, start time.Time) ([]*message.Message, error) {
	r := w.r
	key := w.key(msg)
	var d delivery
	d.rec, _ = r.table.get(key)
	n := w.resolve(msg)
	for {
		if isShutdown(err) {
			// The cancelled call counts as neither success nor failure:
			// its delivery made no attempt.
			w.recordDeferral(msg, &d, time.Now(), 0, err)
			return nil, err
		}
		var retry bool
		if dfr, ok := levee.AsDeferral(err); ok {
			retry, err = w.deferral(msg, n, &d, dfr, err, start)
		} else {
			retry, err = w.failure(msg, n, &d, err, start)
		}
		if !retry {
			return nil, err
		}
		w.recordHold(msg, start)
		var out []*message.Message
		out, err = w.attempt(msg)
		if err == nil {
			r.table.forget(key)
			return out, nil
		}
	}
}

// deferral handles a call that ended in a deferral: no attempt was made.
// It waits RetryAfter in process when the wait ends within the max hold
// (retry true); otherwise it records the deferral in the table, so the
// redelivery neither counts it as an attempt nor runs before RetryAfter,
// and returns the deferral for the router to Nack.
func (w *wrapped) deferral(msg *message.Message, n *names, d *delivery, dfr levee.Deferral, err error, start time.Time) (bool, error) {
	r := w.r
	after := min(dfr.RetryAfter(), levee.MaxRetryAfter)
	now := time.Now()
	if hold := r.cfg.maxHold; hold > 0 && after > 0 && now.Add(after).Sub(start) <= hold {
		w.reportDeferral(msg, after, err)
		if werr := sleep(msg, after); werr != nil {
			w.recordDeferral(msg, d, now, 0, err)
			return false, fmt.Errorf("%w: %w", ErrInterrupted, errors.Join(err, werr))
		}
		return true, nil
	}
	if since := d.rec.deferredSince; r.cfg.maxDeferred > 0 && !since.IsZero() && now.Sub(since) >= r.cfg.maxDeferred {
		// Only deferred for max_deferred: dead-lettered (opt-in), not
		// Nacked once more.
		first := d.rec.first
		if first.IsZero() {
			first = since
		}
		_, derr := w.deadLetter(msg, n, fmt.Errorf("%w (%s since its first deferral, max_deferred %s): %w",
			ErrDeferredTooLong, now.Sub(since).Round(time.Millisecond), r.cfg.maxDeferred, err), ClassExhausted, d.rec.attempts, first, now)
		return false, derr
	}
	w.recordDeferral(msg, d, now, after, err)
	r.ins.deferrals.Add(msg.Context(), 1, n.attrs.base)
	r.cfg.logger.Debug("levee dlq: deferred (not an attempt)", watermill.LogFields{
		"uuid": trunc.Log(msg.UUID), "handler": n.handler, "retry_after": after, "err": trunc.LogError(err)})
	return false, err
}

// recordDeferral counts one delivery Nacked without an attempt.
func (w *wrapped) recordDeferral(msg *message.Message, d *delivery, now time.Time, after time.Duration, err error) {
	rec := d.rec
	if d.counted {
		rec.attempts, rec.first = d.attempt, d.first
	}
	if !d.deferred {
		rec.deferrals = min(rec.deferrals, maxCount) + 1
		d.deferred = true
	}
	if rec.deferredSince.IsZero() {
		rec.deferredSince = now
	}
	rec.notBefore, rec.dueByDeferral = time.Time{}, after > 0
	if after > 0 {
		rec.notBefore = now.Add(after)
	}
	if rec.err == nil {
		rec.err = err
	}
	d.rec = rec
	w.r.table.put(w.key(msg), rec)
}

// failure handles a failed attempt: it counts it and decides between a
// retry in place after the backoff (retry true), a deferred retry (the
// backoff ends past the max hold: *RetryLaterError) and a dead letter.
func (w *wrapped) failure(msg *message.Message, n *names, d *delivery, err error, start time.Time) (bool, error) {
	r := w.r
	b := r.cfg.backoff
	now := time.Now()
	if start.IsZero() {
		start = now
	}
	if !d.counted {
		// Attempts before this delivery: the table's count, or the
		// transport's delivery count less the deliveries that made no
		// attempt, whichever is larger. With an attempt store the store
		// counts instead of the delivery count (see countAttempt).
		before := d.rec.attempts
		if r.cfg.attemptStore == nil {
			before = max(deliveryAttempts(msg.Metadata)-d.rec.deferrals, before, 0)
		}
		d.first = now
		if !d.rec.first.IsZero() {
			d.first = d.rec.first
		}
		d.attempt, d.counted = min(before, maxCount), true
	}
	d.attempt++ // the attempt that just failed
	d.made++
	d.attempt, d.first = w.countAttempt(msg, n, d, now)
	class := w.classify(err)
	if class != ClassTransient {
		_, err = w.deadLetter(msg, n, err, class, d.attempt, d.first, now)
		return false, err
	}
	if d.attempt >= b.MaxAttempts {
		_, err = w.deadLetter(msg, n, err, ClassExhausted, d.attempt, d.first, now)
		return false, err
	}
	delay := b.Delay(d.attempt, r.cfg.jitter())
	due := now.Add(delay)
	if b.MaxElapsed > 0 && due.Sub(d.first) > b.MaxElapsed {
		_, err = w.deadLetter(msg, n, err, ClassExhausted, d.attempt, d.first, now)
		return false, err
	}
	rec := d.rec
	rec.attempts, rec.first, rec.notBefore, rec.err = d.attempt, d.first, due, keptError(err, r.cfg.maxErrorLength)
	rec.dueByDeferral = false
	if hold := r.cfg.maxHold; hold > 0 && due.Sub(start) > hold {
		d.rec = rec
		r.table.put(w.key(msg), rec)
		r.ins.deferred.Add(msg.Context(), 1, n.attrs.base)
		r.cfg.logger.Debug("levee dlq: retry deferred to redelivery", watermill.LogFields{
			"uuid": trunc.Log(msg.UUID), "handler": n.handler, "attempt": d.attempt, "delay": delay, "err": trunc.LogError(err)})
		return false, &RetryLaterError{Delay: delay, Attempts: d.attempt, Err: err}
	}
	w.reportRetry(msg, n, d.attempt, delay, err)
	if werr := sleep(msg, delay); werr != nil {
		d.rec = rec
		r.table.put(w.key(msg), rec)
		return false, fmt.Errorf("%w: %w", ErrInterrupted, errors.Join(err, werr))
	}
	r.ins.retries.Add(msg.Context(), 1, n.attrs.base)
	return true, nil
}
