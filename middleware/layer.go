package middleware

import "github.com/ThreeDotsLabs/watermill/message"

// Layer is a concern's middleware as a value: the shape of every Levee
// concern (*dlq.Retrier, *breaker.Breaker, *ratelimit.Limiter, ...), set in
// a slot with Stack.SetLayer.
type Layer interface {
	Middleware(next message.HandlerFunc) message.HandlerFunc
}

// HandlerAware is the optional interface of a Layer that wants to know the
// service's handler it protects: the dlq's Retrier names the handler's
// definition (function, file:line) on every dead letter, which it cannot
// see through the layers between it and the handler.
//
// Stack.Middleware calls MiddlewareFor instead of Middleware, once per
// handler it wraps (never per message), with handler: the function given
// to Stack.Locate, or else the func the Stack wraps (which is an adapter,
// not the service's code, when Watermill's AddConsumerHandler or a batcher
// registered it). handler is a func value of any func type, or nil when
// not known; an implementation must accept anything without panicking.
type HandlerAware interface {
	MiddlewareFor(next message.HandlerFunc, handler any) message.HandlerFunc
}

// SetLayer puts l's Middleware in slot s, like SetLabeled, and remembers l
// when it is HandlerAware so that Middleware tells it the handler. A nil l
// empties the slot. It returns the Stack so calls can be chained, and
// panics only for a Slot value outside the declared constants.
func (s *Stack) SetLayer(slot Slot, l Layer, label string) *Stack {
	if l == nil {
		return s.SetLabeled(slot, nil, "")
	}
	s.SetLabeled(slot, l.Middleware, label)
	s.aware[slot], _ = l.(HandlerAware)
	return s
}

// Locate names fn as the service's handler the Stack protects, for the
// slots whose Layer is HandlerAware (the dlq names it on every dead
// letter). It is needed only when the func the Stack wraps is not the
// service's own: a handler registered with Watermill's AddConsumerHandler
// (Watermill wraps it in a closure of its own) or a batcher's handler
// (pass the batch function). Without it the Stack tells them the func it
// wraps. fn is a func value of any func type; nil forgets an earlier one.
// Locate is for a Stack that protects one handler (config builds one per
// handler): a Stack used as router-level middleware for several would name
// the same function for each. Call it before Middleware; it returns the
// Stack so calls can be chained.
func (s *Stack) Locate(fn any) *Stack {
	s.handler = fn
	return s
}

// wrap applies the filled slots to next, innermost first, calling a
// HandlerAware layer with the handler (built once per handler, so nothing
// here is on the per-message path).
func (s *Stack) wrap(next message.HandlerFunc) message.HandlerFunc {
	var handler any = next
	if s.handler != nil {
		handler = s.handler
	}
	h := next
	for i := numSlots - 1; i >= 0; i-- {
		switch {
		case s.aware[i] != nil:
			h = s.aware[i].MiddlewareFor(h, handler)
		case s.mws[i] != nil:
			h = s.mws[i](h)
		}
	}
	return h
}
