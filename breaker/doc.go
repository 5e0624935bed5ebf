// Package breaker is Levee's circuit breaker for Watermill handlers. Unlike
// a fail-fast breaker it pauses consumption while open and drains gradually
// after recovery.
//
// State and counting are a state machine of Levee's own behind one lock,
// with gobreaker v2's rules (github.com/sony/gobreaker): closed, open after
// a trip, half-open after the open period, where a configurable
// number of probes decide between closed and open again. Trip policies:
// consecutive failures, a failure ratio over a rolling window with a
// minimum number of calls, and an optional slow-call ratio (calls slower
// than a threshold count as failures, as in resilience4j). Only downstream
// failures count: errors whose ErrorClass() is "permanent" or "validation",
// deferrals (a layer further in, such as priority or ratelimit, declined to
// run the handler: levee.Deferral) and context.Canceled count neither way; WithIsSuccessful and
// WithIsExcluded refine that. A handler panic counts as a failure and is
// re-panicked for Recover further out.
//
// While open, a message waits instead of failing: the handler is not called
// and no error goes back to the router, so there is no Nack and no
// redelivery spin. Every wait selects on the message context and on Close,
// and is bounded by WithMaxHold: past it the message gets an *OpenError
// (wrapping ErrOpen, with RetryAfter; a levee.Deferral, so the dlq neither
// counts it as an attempt nor dead-letters it), which the router Nacks and which
// adapters turn into a delayed redelivery where the transport has one. With
// a max hold H and an outage T, a handler with k messages in flight sees at
// most k×T/H redeliveries. While half-open, the probes go through and the
// other messages keep waiting; they are released when the state changes.
//
// Drain: with WithDrain, after the breaker closes admitted throughput ramps
// from start to 100% over a window along max(start, (elapsed/window)^(1/
// aggression)) (Envoy's slow start). 100% is the moving average of
// successful calls per second observed before the trip, or WithDrainRate.
// The ramp drives the rate of a token bucket the breaker owns: Levee's one
// bucket (internal/gcra), which the ratelimit package builds on too. A trip
// during the drain restarts the cycle.
//
// # Where it sits
//
// Middleware goes in slot 6 of Levee's canonical order
// (middleware.SlotBreaker): inside tracing, metrics, recover, dlq and dedup,
// outside priority, ratelimit and timeout. By default it also does the
// drain's wait, before the call is counted, so that wait holds no priority
// slot. With WithSeparateDrain the drain's wait moves to DrainMiddleware,
// which goes in slot 8 (middleware.SlotRateLimit, before the rate limiter):
// the message then holds its priority slot while it waits for the ramp's
// token, so priority decides who goes first during the drain.
//
// A slow call is judged on the call's time less the waits of Levee's layers
// inside the breaker's slot in it (a priority slot, a rate-limit token, an
// inner breaker or its drain, a batch's start): backpressure is not
// failure (see WithSlowCall).
//
// # Sharing and concurrency
//
// A Breaker is safe for concurrent use. Install the same Breaker's
// Middleware on several handlers to have them trip, pause and drain as one
// (for example every handler calling the same payment provider). Hooks
// given with WithOnStateChange run outside any lock, in order, and may call
// the Breaker. ForceOpen, ForceClosed and ClearForce are an operator's kill
// switch. Close releases waiting messages with ErrClosed.
//
// # Configuration
//
// The YAML section (see Config) under a handler:
//
//	breaker:
//	  consecutive_failures: 5
//	  failure_ratio: 0.5
//	  min_requests: 20
//	  window: 10s
//	  open_for: 10s
//	  half_open_probes: 3
//	  slow_call: {threshold: 2s, ratio: 0.5}
//	  max_hold: 30s
//	  drain: {window: 30s, start: 10%, aggression: 1.0, rate: 100/s}
//
// or, for a breaker shared by several handlers and defined once at the top
// level under breakers: {name: {...}}, breaker: {shared: name}.
//
// Telemetry (opt-in with WithMeterProvider; span events on the message's
// span when it records) is listed in docs/TELEMETRY.md.
package breaker
