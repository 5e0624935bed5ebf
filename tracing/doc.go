// Package tracing carries a message's OpenTelemetry trace across every hop,
// retry, dead letter and replay, and records Levee's handler metrics.
//
// # What it provides
//
//   - Tracer.Middleware, for the outermost (tracing) slot of
//     middleware.Stack. Per delivery it extracts the W3C traceparent,
//     tracestate and baggage from the message metadata with
//     propagation.MapCarrier(msg.Metadata), using TraceContext+Baggage by
//     default whatever the global propagator is (WithPropagators overrides
//     it); it starts a "process <topic>" span of kind consumer with the
//     messaging semantic-convention attributes of the pinned package
//     go.opentelemetry.io/otel/semconv/v1.43.0 (messaging.system,
//     messaging.destination.name, messaging.message.id,
//     messaging.consumer.group.name, messaging.message.body.size,
//     messaging.operation.name/type); it injects the span into the context
//     and metadata of every message the handler produces; and it ends the
//     span with levee.outcome = acked, nacked, deferred, canceled or
//     dead_lettered, plus levee.error.class on nacked and dead_lettered.
//   - Tracer.DecoratePublisher, a message.PublisherDecorator for
//     Router.AddPublisherDecorators (or a dlq publisher): a "publish <topic>"
//     span of kind producer per message, injected into its metadata.
//   - Tracer.StartReplay and LinkFromMetadata: a replayed dead letter starts
//     a new trace linked to the original one.
//   - Metrics.Middleware, for the metrics slot: levee.handler.duration and
//     levee.handler.messages per handler, topic, outcome and class.
//
// The span events the other concerns add to the consumer span (retry,
// deferral waited in process, breaker wait, priority wait, batch
// membership, dead letter, dedup; a rate-limit wait adds none) are named by the Event* constants;
// docs/TELEMETRY.md lists every span, event, attribute and instrument.
//
// # Where it sits
//
// The canonical order (middleware/doc.go) puts tracing first, so the
// consumer span covers everything below it, dead-letter publish included,
// and metrics second. The dlq layer returns nil after a confirmed
// dead-letter publish, so the message is acked; it tells the outer layers by
// calling internal/telemetry.MarkDeadLettered(msg.Context(), class, err), which
// both middlewares read when the chain returns nil.
//
// # Outcome and error classes
//
// A nil result is acked, unless an inner layer marked the message
// dead-lettered. An error that wraps context.Canceled is canceled (the
// delivery's context ended, mostly a subscriber closing and handing back
// what it held): neither success nor failure, no class, no span error
// status. A levee.Deferral is deferred, likewise no failure. A panic
// that reaches them (no recover slot, no dlq; Watermill's router recovers
// it and Nacks) is nacked with class "panic", and goes on. Any other
// error is nacked, with the class read through the method
// ErrorClass() string (default "transient"). Metric attributes keep the five
// shared classes and record any other as "other"; spans keep the value.
//
// # Bad input
//
// A malformed, truncated or oversized (over MaxTraceparentLen bytes)
// traceparent starts a new root span, marked levee.tracing.invalid_parent
// with a levee.tracing.invalid_context event, and is counted in
// levee.tracing.invalid_context. It never panics. A message without
// metadata is fine; produced messages without metadata get some.
//
// # Telemetry off
//
// Telemetry is opt-in: without WithTracerProvider a Tracer's middleware and
// decorator return what they wrap, and without WithMeterProvider so does the
// Metrics middleware, so the cost per message is that of the bare handler.
// Pass otel.GetTracerProvider() and otel.GetMeterProvider() to use the
// globals.
//
// # Concurrency
//
// Tracer and Metrics are safe for concurrent use, start no goroutines and
// need no Close. Each Middleware(next) wrapper resolves its handler name and
// topic from the message context (message.HandlerNameFromCtx,
// message.SubscribeTopicFromCtx) on its first message and reuses the
// precomputed attributes afterwards.
//
// # Configuration
//
// The "tracing" section of a handler decodes into Config (system,
// consumer_group, propagators); Config.Options gives the options to pass to
// New and NewMetrics next to the providers, which come from code.
package tracing
