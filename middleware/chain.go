package middleware

import "github.com/ThreeDotsLabs/watermill/message"

// Chain composes middlewares into one. The first argument is the outermost:
// Chain(a, b, c)(h) runs a, then b, then c, then h, and unwinds in reverse.
// Nil middlewares are skipped, so optional concerns can be passed as nil.
// With no (non-nil) middlewares Chain returns the handler unchanged.
func Chain(mws ...message.HandlerMiddleware) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				h = mws[i](h)
			}
		}
		return h
	}
}
