package dlq

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Router is the middleware of the dlq slot. It owns retry and
// dead-lettering together, so their order cannot be got wrong: a failed
// handler is classified; a transient error is retried in place with
// exponential backoff and full jitter; a permanent, validation or panic
// error, or a transient one past the retry budget (class exhausted), is
// published to the dead-letter topic, and only when that publish returned
// nil is the original acked. Everything else (a failed DLQ publish, a
// cancelled context, a wait beyond max hold) returns an error, so the router
// Nacks and the message is redelivered: nothing is dropped.
//
// A Router is safe for concurrent use; one Router may wrap any number of
// handlers. It starts no goroutine and needs no Close.
type Router struct {
	pub   message.Publisher
	cfg   config
	table *attemptTable
	ins   instruments
}

// New returns a Router that publishes dead letters with publisher. It
// returns an error wrapping ErrInvalidConfig for a nil publisher or an
// invalid option (see each option), and the meter's error if an instrument
// cannot be created.
func New(publisher message.Publisher, opts ...Option) (*Router, error) {
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
	return &Router{pub: publisher, cfg: cfg, table: newAttemptTable(cfg.tableSize), ins: ins}, nil
}

// Backoff returns the retry policy in use.
func (r *Router) Backoff() Backoff { return r.cfg.backoff }

// Label describes the configuration for middleware.Stack.SetLabeled, e.g.
// "topic=<topic>.dlq attempts=5 backoff=100ms..10s x2".
func (r *Router) Label() string {
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
	if r.cfg.attemptStore != nil {
		s += " attempts=shared"
	}
	return s
}

// Pending returns how many messages the in-process attempt table tracks
// (Nacked after a failure, not yet settled).
func (r *Router) Pending() int { return r.table.len() }

// Middleware wraps next; pass it to Router.AddMiddleware,
// Handler.AddMiddleware or the Stack's dlq slot. The success path costs two
// atomic loads (plus a clock read with WithMaxHold) and allocates nothing.
func (r *Router) Middleware(next message.HandlerFunc) message.HandlerFunc {
	w := &wrapped{r: r, next: next}
	return w.handle
}

// wrapped is one Middleware(next) wrapper; it resolves the handler name and
// topic, and their metric attributes, on its first failure.
type wrapped struct {
	r     *Router
	next  message.HandlerFunc
	names atomic.Pointer[names]
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
	if r.table.len() > 0 {
		if start.IsZero() {
			start = time.Now()
		}
		if rec, ok := r.table.get(msg.UUID); ok && !rec.notBefore.IsZero() {
			if err := w.waitDue(msg, rec, start); err != nil {
				return nil, err
			}
		}
	}
	out, err := w.attempt(msg)
	if err == nil {
		r.table.forget(msg.UUID)
		return out, nil
	}
	return w.failed(msg, err, start)
}

// attempt runs the validator, if any, then the handler chain.
func (w *wrapped) attempt(msg *message.Message) ([]*message.Message, error) {
	if v := w.r.cfg.validator; v != nil {
		if err := v(message.SubscribeTopicFromCtx(msg.Context()), msg.Payload); err != nil {
			var c Classed
			if !errors.As(err, &c) {
				err = WithClass(err, ClassValidation)
			}
			return nil, err
		}
	}
	return call(w.next, msg)
}

// waitDue makes a redelivered message wait until its deferred retry is due.
// When that is further away than max hold, it waits max hold and Nacks the
// message again with the rest as RetryAfter: a transport without native
// delay (which redelivers at once) spins at most once per max hold, and the
// handler is not called early.
func (w *wrapped) waitDue(msg *message.Message, rec record, start time.Time) error {
	wait := rec.notBefore.Sub(start)
	if wait <= 0 {
		return nil
	}
	hold := w.r.cfg.maxHold
	early := hold > 0 && wait > hold
	if early {
		wait = hold
	}
	if err := sleep(msg, wait); err != nil {
		return fmt.Errorf("%w: %w", ErrInterrupted, errors.Join(rec.err, err))
	}
	if early {
		return &RetryLaterError{Delay: time.Until(rec.notBefore), Attempts: rec.attempts, Err: rec.err}
	}
	return nil
}

func (w *wrapped) classify(err error) Class {
	if f := w.r.cfg.classifier; f != nil {
		if c := f(err); c != "" {
			return normalize(c)
		}
	}
	return Classify(err)
}

// failed runs the retry loop after the first failure of this delivery.
func (w *wrapped) failed(msg *message.Message, err error, start time.Time) ([]*message.Message, error) {
	if isShutdown(err) {
		return nil, err
	}
	r := w.r
	b := r.cfg.backoff
	now := time.Now()
	if start.IsZero() {
		start = now
	}
	before, first := deliveryAttempts(msg.Metadata), now
	if rec, ok := r.table.get(msg.UUID); ok {
		before = max(before, rec.attempts)
		if !rec.first.IsZero() {
			first = rec.first
		}
	}
	attempt := min(before, maxCount) + 1 // the attempt that just failed
	n := w.resolve(msg)
	for {
		attempt, first = w.shareAttempt(msg, n, attempt, first, now)
		class := w.classify(err)
		if !class.retryable() {
			return w.deadLetter(msg, n, err, class, attempt, first, now)
		}
		if attempt >= b.MaxAttempts {
			return w.deadLetter(msg, n, err, ClassExhausted, attempt, first, now)
		}
		delay := b.Delay(attempt, r.cfg.jitter())
		due := now.Add(delay)
		if b.MaxElapsed > 0 && due.Sub(first) > b.MaxElapsed {
			return w.deadLetter(msg, n, err, ClassExhausted, attempt, first, now)
		}
		if hold := r.cfg.maxHold; hold > 0 && due.Sub(start) > hold {
			r.table.put(msg.UUID, record{attempts: attempt, first: first, notBefore: due, err: err})
			r.ins.deferred.Add(msg.Context(), 1, n.attrs.base)
			r.cfg.logger.Debug("levee dlq: retry deferred to redelivery", watermill.LogFields{
				"uuid": msg.UUID, "handler": n.handler, "attempt": attempt, "delay": delay, "err": err})
			return nil, &RetryLaterError{Delay: delay, Attempts: attempt, Err: err}
		}
		w.reportRetry(msg, n, attempt, delay, err)
		if werr := sleep(msg, delay); werr != nil {
			r.table.put(msg.UUID, record{attempts: attempt, first: first, notBefore: due, err: err})
			return nil, fmt.Errorf("%w: %w", ErrInterrupted, errors.Join(err, werr))
		}
		r.ins.retries.Add(msg.Context(), 1, n.attrs.base)
		attempt++
		var out []*message.Message
		out, err = w.attempt(msg)
		if err == nil {
			r.table.forget(msg.UUID)
			return out, nil
		}
		now = time.Now()
		if isShutdown(err) {
			// the cancelled attempt counts as neither success nor failure
			r.table.put(msg.UUID, record{attempts: attempt - 1, first: first, err: err})
			return nil, err
		}
	}
}

func (w *wrapped) reportRetry(msg *message.Message, n *names, attempt int, delay time.Duration, err error) {
	cfg := &w.r.cfg
	if span := trace.SpanFromContext(msg.Context()); span.IsRecording() {
		span.AddEvent("levee.retry", trace.WithAttributes(
			attribute.Int("attempt", attempt),
			attribute.String("delay", delay.String()),
			attribute.String("error", truncate(err.Error(), cfg.maxErrorLength)),
		))
	}
	cfg.logger.Debug("levee dlq: retrying", watermill.LogFields{
		"uuid": msg.UUID, "handler": n.handler, "attempt": attempt, "delay": delay, "err": err})
	if cfg.onRetry != nil {
		cfg.onRetry(RetryInfo{Handler: n.handler, Topic: n.topic, MessageUUID: msg.UUID,
			Attempt: attempt, Delay: delay, Err: err})
	}
}

// sleep waits d or until the message context ends.
func sleep(msg *message.Message, d time.Duration) error {
	ctx := msg.Context()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
