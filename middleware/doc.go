// Package middleware composes Levee's concerns around a Watermill handler
// and loads them from YAML.
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
//  5. breaker: while open the message waits (consumption pauses) instead
//     of failing fast; only downstream failures count.
//  6. priority: waits for a slot of a shared scheduler. It sits inside the
//     breaker and the retry loop so that a paused or backing-off message
//     never holds a shared slot.
//  7. ratelimit (and the breaker's drain ramp): the slot holder waits for a
//     token.
//  8. timeout: bounds one attempt and restores the message context after.
//  9. the user's handler, or a batcher.
//
// Chain is the plain composition (first argument outermost) for callers who
// want their own order.
//
// # Configuration
//
// LoadConfig reads a levee.yaml: a transport section, per-handler sections
// keyed by router handler name, and named shared resources (schedulers,
// breakers). Values may use ${VAR} and ${VAR:-default}; durations are Go
// durations ("250ms"), rates are "200/s" or "5/min", percentages "10%".
// Unknown keys are rejected, and every error names the file, the line and
// the key path:
//
//	levee.yaml:14: handlers.payments.timeout: "3x" is not a duration
//
// Each concern's package owns its section (its Config type and validation);
// this package lists the sections (DefaultSections) and maps them to slots.
// Apply attaches each configured handler's Stack to a router and errors on
// a configured handler the router does not have.
//
// # Concurrency
//
// A Stack is built once and is not safe for concurrent modification; the
// handler it returns is safe for concurrent use when its parts are. Recover
// and Timeout are stateless and safe for concurrent use.
package middleware
