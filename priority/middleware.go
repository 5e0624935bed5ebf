package priority

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/hold"
	"github.com/levee-dev/levee/internal/idkey"
)

// Middleware makes each message wait for a slot of s before calling next,
// and gives the slot back when next returns, with an error, or panics.
// The message's priority comes from its levee_priority metadata (default:
// the scheduler's WithDefaultPriority). The wait ends early, with the
// message Nacked and next not called, when the message context ends (its
// error is returned) or on ErrQueueFull, ErrMaxWait or ErrClosed (a
// *RejectError with RetryAfter). Use HandlerMiddleware for per-handler
// options.
func (s *Scheduler) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return s.wrap(mwConfig{}, next)
}

// HandlerMiddleware returns Middleware configured for one handler by opts
// (WithPriorityFunc, WithHandlerPriority). It returns an error wrapping
// ErrInvalidConfig for an invalid option value.
func (s *Scheduler) HandlerMiddleware(opts ...MiddlewareOption) (message.HandlerMiddleware, error) {
	c, err := newMWConfig(opts...)
	if err != nil {
		return nil, err
	}
	return func(next message.HandlerFunc) message.HandlerFunc { return s.wrap(c, next) }, nil
}

// handlerWrap is one Middleware(next) wrapper: its options and its
// telemetry attributes, resolved on the first message.
type handlerWrap struct {
	s    *Scheduler
	next message.HandlerFunc
	fn   func(*message.Message) int
	def  int

	once  sync.Once
	attrs *handlerAttrs // set by once; nil when metrics are off
}

func (s *Scheduler) wrap(c mwConfig, next message.HandlerFunc) message.HandlerFunc {
	h := &handlerWrap{s: s, next: next, fn: c.priorityFunc, def: s.cfg.defaultPriority}
	if c.hasDefault {
		h.def = c.defaultPriority
	}
	return h.handle
}

func (h *handlerWrap) handle(msg *message.Message) ([]*message.Message, error) {
	s := h.s
	ctx := msg.Context()
	if s.tel != nil {
		h.once.Do(func() {
			h.attrs = newHandlerAttrs(s.cfg.name, message.HandlerNameFromCtx(ctx), message.SubscribeTopicFromCtx(ctx))
		})
	}
	p := h.priority(msg)
	since := time.Duration(-1)
	if s.arrivals.Len() > 0 {
		since = s.arrival(h, msg)
	}
	waited, arrived, err := s.acquire(ctx, msg, p, since)
	if err != nil {
		var re *RejectError
		if arrived >= 0 && errors.As(err, &re) {
			// its redelivery to this handler ages from here; the key is
			// bounded whatever UUID the producer chose, and a message
			// without one is known by its content
			s.arrivals.PutUntil(arrivalKey{h, idkey.Message(msg)}, arrived, time.Now().Add(re.Retry+ArrivalTTL))
		}
		h.rejected(msg, p, waited, err)
		return nil, err
	}
	if since >= 0 {
		s.arrivals.Delete(arrivalKey{h, idkey.Message(msg)})
	}
	defer s.Release()
	if h.attrs != nil || waited > 0 {
		h.acquired(ctx, p, waited)
	}
	return h.next(msg)
}

// arrival returns the message's remembered first arrival, or -1, after
// sweeping the expired ones (at most once per arrivalSweepEvery). It is
// kept out of handle (noinline), off the success path's frame.
//
//go:noinline
func (s *Scheduler) arrival(h *handlerWrap, msg *message.Message) time.Duration {
	s.arrivals.Sweep(time.Now(), arrivalSweepEvery)
	if t, ok := s.arrivals.Get(arrivalKey{h, idkey.Message(msg)}); ok {
		return t
	}
	return -1
}

// acquired records a granted slot: the wait metric, and an event on the
// span and the delivery's wait account (package hold: a slow-call breaker
// further out does not count the wait) when the message waited. It is kept out of handle (noinline) so that
// the success path's stack frame stays small: a router runs every delivery
// on a fresh goroutine, whose stack starts small and is copied when it
// grows.
//
//go:noinline
func (h *handlerWrap) acquired(ctx context.Context, p int, waited time.Duration) {
	if h.attrs != nil {
		h.s.tel.wait.Record(ctx, waited.Seconds(), h.attrs.wait[p-MinPriority]...)
	}
	if waited <= 0 {
		return
	}
	hold.AddWait(ctx, waited)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(EventAcquired, trace.WithAttributes(
			AttrEventPriority.Int(p),
			AttrEventEffective.Float64(h.s.effective(p, waited)),
			AttrEventWait.Float64(waited.Seconds()),
		))
	}
}

// effective is the effective priority of a message of base p after
// waiting waited.
func (s *Scheduler) effective(p int, waited time.Duration) float64 {
	if s.cfg.aging <= 0 {
		return float64(p)
	}
	return float64(p) + float64(waited)/float64(s.cfg.aging)
}

func (h *handlerWrap) rejected(msg *message.Message, p int, waited time.Duration, err error) {
	re, ok := err.(*RejectError)
	if !ok {
		// The message context ended: not a rejection by the scheduler.
		return
	}
	ctx := msg.Context()
	if h.attrs != nil {
		h.s.tel.shed.Add(ctx, 1, h.attrs.shed[p-MinPriority][reasonIndex(re.Err)]...)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(EventRejected, trace.WithAttributes(
			AttrEventPriority.Int(p),
			AttrEventWait.Float64(waited.Seconds()),
			AttrEventReason.String(reasonName(reasonIndex(re.Err))),
		))
	}
}

// priority returns msg's base priority, counting garbage and clamped
// values.
func (h *handlerWrap) priority(msg *message.Message) int {
	if h.fn != nil {
		v := h.fn(msg)
		if p := Clamp(v); p != v {
			h.s.clamped.Add(1)
			return p
		}
		return v
	}
	raw, ok := msg.Metadata[levee.KeyPriority]
	if !ok {
		return h.def
	}
	p, st := parse(raw)
	switch st {
	case parseInvalid:
		h.s.invalid.Add(1)
		if h.attrs != nil {
			h.s.tel.invalid.Add(msg.Context(), 1, h.attrs.invalid...)
		}
		return h.def
	case parseClamped:
		h.s.clamped.Add(1)
	}
	return p
}
