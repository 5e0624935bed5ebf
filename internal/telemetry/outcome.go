package telemetry

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"

	"github.com/levee-dev/levee"
)

// Outcomes of one delivery, as recorded by the tracing and metrics
// middlewares (span attribute levee.outcome, metric attribute outcome).
const (
	// OutcomeAcked: the handler chain returned nil and nothing was
	// dead-lettered; the message is acked.
	OutcomeAcked = "acked"
	// OutcomeNacked: the handler chain returned an error, or returned nil
	// after the handler Nacked the message itself (see HandlerNacked, class
	// transient); the message is Nacked and the transport redelivers it.
	OutcomeNacked = "nacked"
	// OutcomeDeferred: a layer declined to run the handler now
	// (levee.Deferral: breaker, rate limit, priority, batch); the message
	// is Nacked for a redelivery after its RetryAfter. Not a failure.
	OutcomeDeferred = "deferred"
	// OutcomeDeadLettered: an inner layer (dlq) published the message to a
	// dead-letter topic, confirmed, and then let it be acked.
	OutcomeDeadLettered = "dead_lettered"
	// OutcomeCanceled: the handler chain returned context.Canceled (see
	// IsCanceled): the delivery's context ended, mostly because the
	// subscriber is closing and hands back the messages still held (in a
	// breaker, priority, rate-limit or batch wait, a dlq backoff) or
	// running. The message is Nacked and redelivered. Neither success nor
	// failure, as the breaker and the dlq count it: no class.
	OutcomeCanceled = "canceled"
)

// IsCanceled reports whether a handler chain's error is a cancellation
// (errors.Is context.Canceled, the test the breaker and the dlq apply):
// outcome canceled, whatever else the error wraps (a dlq backoff or
// in-process deferral interrupted at shutdown joins the attempt's error or
// the deferral with context.Canceled).
func IsCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// HandlerNacked reports whether msg was Nacked while the handler chain
// ran: a handler that calls msg.Nack() itself and returns nil. Watermill's
// router then Acks, which does nothing on a Nacked message, and the broker
// redelivers it: the delivery is no success. A layer that acts on success
// (dedup marks the identity done, the metrics and tracing middlewares
// count acked) asks this when next returns nil. Levee's layers never Nack
// a message themselves, so only the handler can have done it. It costs a
// non-blocking channel receive.
func HandlerNacked(msg *message.Message) bool {
	select {
	case <-msg.Nacked():
		return true
	default:
		return false
	}
}

// ClassOther replaces a class outside the five levee.Class constants in
// metric attributes, to bound their cardinality. Spans keep the real value.
const ClassOther = "other"

// Attribute keys for outcomes: AttrOutcome and AttrClass on metrics,
// AttrSpanOutcome and AttrSpanClass on spans and span events.
const (
	AttrOutcome     = attribute.Key("outcome")
	AttrClass       = attribute.Key("class")
	AttrSpanOutcome = attribute.Key("levee.outcome")
	AttrSpanClass   = attribute.Key("levee.error.class")
)

// KnownClasses lists the classes that metric attributes keep as they are.
func KnownClasses() []string {
	return []string{
		string(levee.ClassTransient), string(levee.ClassPermanent), string(levee.ClassValidation),
		string(levee.ClassPanic), string(levee.ClassExhausted),
	}
}

// ErrorClass returns levee.ClassOf(err) as a string, for attributes.
func ErrorClass(err error) string { return string(levee.ClassOf(err)) }

type outcomeKey struct{}

// Outcome lets an inner layer tell the outer telemetry layers what became of
// a message whose handler chain returns nil: the dlq layer returns nil after
// a confirmed dead-letter publish (so the message is acked), and the tracing
// and metrics middlewares, which sit outside it, report dead_lettered instead
// of acked. An Outcome is safe for concurrent use.
type Outcome struct {
	dead atomic.Pointer[deadLetter] // nil until SetDeadLettered
}

// deadLetter is what SetDeadLettered records. Keeping it behind a pointer
// keeps an Outcome (allocated per delivery) one word wide; only a dead
// letter allocates it.
type deadLetter struct {
	class string
	err   error // the error that was dead-lettered, for error.type
}

// WithOutcome returns ctx carrying an Outcome, and that Outcome. When ctx
// already carries one (the tracing middleware put it there), WithOutcome
// returns ctx and the existing Outcome unchanged, so every layer shares one
// recorder and no allocation is made.
func WithOutcome(ctx context.Context) (context.Context, *Outcome) {
	if o, ok := ctx.Value(outcomeKey{}).(*Outcome); ok {
		return ctx, o
	}
	c := &outcomeCtx{Context: ctx}
	return c, &c.o
}

// outcomeCtx is ctx carrying an Outcome, in one allocation where
// context.WithValue and the Outcome would take two. Everything but the
// Outcome's key is ctx's: Done, Err, Deadline, and Value for every other
// key (the context package's own lookups included, so children attach to
// ctx's cancellation directly).
type outcomeCtx struct {
	context.Context
	o Outcome
}

func (c *outcomeCtx) Value(key any) any {
	if _, ok := key.(outcomeKey); ok {
		return &c.o
	}
	return c.Context.Value(key)
}

// String names the context for debugging, as the context package does.
func (c *outcomeCtx) String() string { return "telemetry.WithOutcome" }

// OutcomeFrom returns the Outcome carried by ctx, or nil.
func OutcomeFrom(ctx context.Context) *Outcome {
	o, _ := ctx.Value(outcomeKey{}).(*Outcome)
	return o
}

// MarkDeadLettered records on the Outcome carried by ctx (usually
// msg.Context()) that the message was dead-lettered with class because of
// err (which may be nil; the consumer span's error.type is read from it).
// Call it only after the dead-letter publish is confirmed, just before
// returning nil. It does nothing when ctx carries no Outcome (telemetry
// off), so callers need not check. An empty class is recorded as
// levee.ClassPermanent.
func MarkDeadLettered(ctx context.Context, class string, err error) {
	if o := OutcomeFrom(ctx); o != nil {
		o.SetDeadLettered(class, err)
	}
}

// SetDeadLettered records that the message was dead-lettered with class
// (levee.ClassPermanent when class is empty) because of err (may be nil).
// A later call replaces both.
func (o *Outcome) SetDeadLettered(class string, err error) {
	if class == "" {
		class = string(levee.ClassPermanent)
	}
	o.dead.Store(&deadLetter{class: class, err: err})
}

// Err returns the error recorded by SetDeadLettered (nil when none).
func (o *Outcome) Err() error {
	if d := o.dead.Load(); d != nil {
		return d.err
	}
	return nil
}

// DeadLettered reports whether the message was dead-lettered, and its class.
func (o *Outcome) DeadLettered() (class string, ok bool) {
	if d := o.dead.Load(); d != nil {
		return d.class, true
	}
	return "", false
}
