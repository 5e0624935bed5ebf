// Package middleware composes Levee's concerns around a Watermill handler.
// It imports no concern: the concerns' packages give middlewares, a Stack
// puts them in order. Loading a levee.yaml and applying it to a router is
// package config's job.
//
// # The canonical order
//
// A Stack has one slot per concern and always applies them in this order,
// outermost first, whatever order they are set in:
//
//  1. tracing: the consumer span covers everything below, DLQ publish included.
//  2. metrics: outcome and duration per handler.
//  3. recover: a panic becomes a *PanicError (class "panic") with its stack.
//  4. dlq: classifies the error, retries transient ones with backoff, routes
//     permanent or exhausted ones to the dead-letter queue and only then
//     lets the message be acked; a failed DLQ publish Nacks.
//  5. dedup: claims the message's identity with a lease; a duplicate of a
//     done message is acked without running what is below, one in progress
//     elsewhere is deferred; marks done after success, releases after a
//     failure. Inside dlq, so that each retry claims again after the
//     failure released the claim, a dead-lettered message is never marked
//     done (its replay runs) and a duplicate (nil to the dlq) is never an
//     attempt; outside the breaker, so a duplicate is never a breaker
//     outcome. The claim is not held across the dlq's backoff (a duplicate
//     arriving then may take it, and the retry then finds it done); it is
//     held while the breaker, priority and rate limit wait, so the lease
//     must cover max hold plus the timeout.
//  6. breaker: while open the message waits (consumption pauses) instead
//     of failing fast; only downstream failures count.
//  7. priority: waits for a slot of a shared scheduler. It sits inside the
//     breaker and the retry loop so that a paused or backing-off message
//     never holds a shared slot.
//  8. ratelimit (and the breaker's drain ramp): the slot holder waits for a
//     token.
//  9. timeout: bounds one attempt and restores the message context after.
//  10. the user's handler, or a batcher.
//
// Chain is the plain composition (first argument outermost) for callers who
// want their own order.
//
// # Layers and the handler
//
// A slot holds a message.HandlerMiddleware (Set, or the slot's method) or
// a Layer, a value with a Middleware method (SetLayer). A Layer that is
// also HandlerAware is told the service's handler when the Stack builds a
// handler's chain, once, not per message: the dlq's Retrier names it on
// every dead letter, which it cannot see through the layers below it. The
// handler is the func the Stack wraps, or the function given to Locate
// where that func is an adapter (Watermill's AddConsumerHandler, a
// batcher).
//
// # Concurrency
//
// A Stack is built once and is not safe for concurrent modification; the
// handler it returns is safe for concurrent use when its parts are. Recover
// and Timeout are stateless and safe for concurrent use.
package middleware
