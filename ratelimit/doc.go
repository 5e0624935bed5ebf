// Package ratelimit is Levee's rate limiter for Watermill handlers: a
// token bucket whose achieved rate is the rate you set, with wait or
// reject modes, per-key limits and an adaptive limit that follows the
// downstream's health. It builds on Levee's one token bucket
// (internal/gcra), which the breaker's drain ramp also uses, as a bucket
// of its own: the drain never moves a Limiter's rate.
//
// # Where it sits
//
// In the canonical order (middleware.Stack) ratelimit is slot 8: inside
// tracing, metrics, recover, dlq, dedup, breaker and priority, outside timeout
// and the handler. The holder of a priority slot waits for a token; a
// paused (breaker) or backing-off (retry) message holds none. The timeout
// does not include the time spent waiting for a token.
//
// # Modes
//
//   - ModeWait (default): the handler waits for a token, so the consumer
//     slows down and backpressure reaches the broker. Every wait selects on
//     the message context; a wait that would exceed max_wait (or the shared
//     max_hold) or outlast the context's deadline ends at once in a
//     *LimitedError, which the router Nacks.
//   - ModeReject: a message without a free token fails with a
//     *LimitedError. Its RetryAfter() is the expected wait for a token of
//     its own: the messages rejected one after the other are told the
//     tokens to come one by one (up to levee.MaxRetryAfter), reserving
//     none, so a transport with delayed redelivery brings a backlog back
//     at the rate, not all together.
//
// Nothing is acked unprocessed: a message that is not admitted is Nacked.
//
// # Accuracy
//
// The bucket admits by schedule (GCRA): each permit has a slot, slots
// chain on a theoretical arrival time rather than on wake-ups, one timer
// wake-up releases every queued waiter whose slot is due, and each woken
// waiter measures how late it runs: the consumer's next requests continue
// the schedule by at most that lateness (bounded by WithCatchUp). So the
// achieved rate does not depend on timer granularity, also for a single
// sequential consumer with burst 1, where x/time/rate loses the lateness
// of every wake-up. A consumer's own pauses are not caught up. The clock
// is read under the lock, so contention cannot over-admit
// (golang/go#65508). Over any window W, admissions never exceed
// rate*(W+L)+burst, where L <= catch-up is the measured lateness; over the
// long run never more than rate*elapsed+burst.
//
// # Values
//
// A rate of 0 admits nothing (waits end only by context, max_wait or a
// later SetRate; rejections suggest ZeroRateRetryAfter). NaN, negative or
// infinite rates, negative bursts and a burst of 0 with a positive rate are
// errors from New and Config.Validate (ErrInvalidConfig). New without a rate is
// unlimited. SetRate(+Inf) removes the limit; SetRate of NaN or a negative
// value is treated as 0.
//
// # Per-key limits
//
// WithKeyMetadata or WithKeyFunc select a key (tenant, customer, partner
// API); WithPerKey sets the default limit and WithKeyOverride per-key
// exceptions. A message takes a token of its key's bucket, then of the
// limiter's own bucket (if WithRate is set). Live keys are bounded
// (WithMaxKeys) and idle keys expire (WithKeyIdle); a key is dropped only
// at rest, so dropping never over-admits. A missing or empty key, a key
// longer than MaxKeyLen, a panicking key function and keys beyond the
// bound use the shared FallbackKey bucket, counted by reason in metrics.
//
// # Adaptive limits
//
// WithAdaptive adjusts the limiter's rate within [Min, Max] from the
// handler's latency and error rate (AIMD with a goodput-aware decrease and
// a hold while the backlog drains); see Adaptive.
//
// # Concurrency
//
// A Limiter is safe for concurrent use, including SetRate and SetBurst
// under load. It owns one timer per bucket, armed only while someone
// waits; Close stops them and fails pending waits with ErrClosed.
//
// # Configuration
//
// Config is the YAML section (handlers.<name>.ratelimit):
//
//	ratelimit:
//	  rate: 200/s
//	  burst: 20
//	  mode: wait
//	  max_wait: 1s
//	  key: {metadata: customer_id}
//	  per_key: {rate: 5/s, burst: 5, overrides: {vip: {rate: 50/s}}}
//
// # Telemetry
//
// With WithMeterProvider: levee.ratelimit.wait.duration,
// levee.ratelimit.rejected, levee.ratelimit.limit, levee.ratelimit.keys,
// levee.ratelimit.key.fallbacks and levee.ratelimit.adaptive.adjustments
// (docs/TELEMETRY.md). Without it the limiter records nothing and costs
// nothing.
package ratelimit
