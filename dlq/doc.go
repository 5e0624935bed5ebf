// Package dlq routes poison messages: it classifies a handler's error,
// retries transient failures with exponential backoff and full jitter, and
// publishes messages that cannot be processed to a dead-letter topic with
// everything needed to understand, group and replay them. Only once that
// publish returned nil is the original acked; otherwise it is Nacked, so
// nothing is lost (at-least-once).
//
// # One middleware for retry and dead-lettering
//
// [Retrier] owns both, so their order cannot be got wrong (Watermill's Retry
// and PoisonQueue behave differently depending on the order they are added
// in). It sits in the Stack's dlq slot of the canonical order:
//
//	tracing > metrics > recover > dlq > breaker > priority > ratelimit > timeout > handler
//
// The consumer span (tracing) covers the retries and the DLQ publish; the
// breaker, priority slot and rate limit are inside the retry loop, so a
// backing-off message holds no scheduler slot. Because Recover sits outside,
// the Retrier recovers panics of the chain below it itself (per attempt) as
// a *levee.PanicError of class panic, the same error an inner Recover
// returns.
//
// Every dead letter names the service's handler function, "pkg.Func
// (file:line)", in levee_code_location (a panic: the first frame of the
// service's code in its stack). Layers between the dlq and the handler
// hide it, so in a middleware.Stack set the Retrier with SetLayer: it is a
// middleware.HandlerAware, and the Stack tells it the handler once, when
// it builds the handler's chain ([Retrier.MiddlewareFor]). Package config
// does so for every handler of a levee.yaml.
//
// # Classification
//
// An error's class is read through the [levee.Classed] interface
// (ErrorClass() string), the outermost implementation in the chain winning;
// [Permanent] marks an error; a [Classifier] (WithClassifier) may override.
//
//	transient (default)  retried; past max attempts or max elapsed: dead-lettered as exhausted
//	permanent            dead-lettered at once
//	validation           dead-lettered at once (package validate), with levee_validation_errors
//	panic                dead-lettered at once
//	exhausted            dead-lettered at once
//	context.Canceled     Nack: neither retried nor dead-lettered (shutdown)
//
// # Retry
//
// The delay before retry n is drawn uniformly from [0, min(max,
// initial*multiplier^(n-1))]; the delay reported to the WithOnRetry hook,
// the logs and the "levee.retry" span event (attributes levee.retry.attempt,
// levee.retry.delay in seconds) is the delay waited. Waits select on the message context. A wait that would
// hold the delivery longer than WithMaxHold (the transport's ack deadline)
// is not slept: the message is Nacked with a *RetryLaterError whose
// RetryAfter is the delay; a transport with native delay redelivers it
// then. An early redelivery (a transport without native delay) waits until
// the retry is due, holding it at most max hold, and is Nacked again with
// the rest as RetryAfter if that is not enough: it never calls the handler
// early, and spins at most once per max hold.
//
// The attempt count survives redelivery: it is the larger of the
// transport's delivery count (metadata levee_delivery_count, set by
// adapters; count-1 attempts were made before) and an in-process table
// keyed by message UUID. The table is bounded (WithAttemptTableSize, default
// 10000, least recently used evicted) and holds only messages Nacked after a
// failure or a deferral, the two kept apart so that a flood of deferrals
// never evicts an attempt count; an entry is removed when the message
// succeeds or is dead-lettered, and expires (WithAttemptTableTTL, default
// 10m after its Nack or its retry's due time) when the message does not
// come back to this process. Garbage counts are ignored, huge ones are capped at 2^30.
// With an [AttemptStore] ([WithAttemptStore], YAML `attempts: shared`),
// every failed attempt is also recorded in a store shared by every
// instance, and the count is the larger of the shared and the local one:
// a poison message is dead-lettered after max attempts in total, whichever
// instances ran them. The store is called only on the failure path.
//
// # Dead letters
//
// The dead letter is a new message with the original's UUID (so a DLQ
// consumer can de-duplicate a repeated dead-lettering after a lost ack; a
// fresh UUID when the original has none), the payload byte for byte, every
// original metadata key (traceparent and tracestate included), and the keys
// listed at [KeyOriginalTopic] and below. A message dead-lettered again
// (after a replay) has its earlier failure keys replaced ([FailureKeys]);
// levee_original_uuid and levee_replay_count are carried through. The
// default topic is "<subscribed topic>.dlq". A failed dead-letter publish
// Nacks the original with a *PublishError whose RetryAfter grows with
// consecutive failures; it is logged and counted. [ParseDeadLetter] reads
// the keys back defensively (for monitors and reports; a missing or garbage
// fingerprint groups as [UnknownFingerprint]).
//
// # Configuration
//
// [Config] is the YAML section:
//
//	dlq:
//	  topic: payments.dlq
//	  consumer_group: billing
//	  max_hold: 30s
//	  retry: {max_attempts: 5, initial: 100ms, max: 10s, multiplier: 2, max_elapsed: 1m}
//	  attempts: shared   # count in config.Deps.AttemptStore (default local)
//
// # Concurrency
//
// A Retrier is safe for concurrent use, starts no goroutine and needs no
// Close. Hooks run on the handler's goroutine, with no lock held.
//
// Package validate adds JSON Schema validation for consumers (class
// validation) and publishers; dlq.WithValidator(registry.Validate) runs it
// inside the Retrier before every attempt.
//
// Package dlq/dlqops works on what this package dead-letters: a Store of
// the letters, the Monitor that records them from the DLQ topics, the
// Replayer, the Pruner and per-group gauges. It imports dlq; dlq imports
// nothing of it.
//
// docs/DLQ.md has the operator's view; docs/TELEMETRY.md (## dlq) lists the
// instruments.
package dlq
