// Package batch processes Watermill messages in bulk while every message
// keeps its own ack or Nack.
//
// A Batcher collects the messages delivered to its Handler into batches and
// hands each batch to one Func, for example a multi-row INSERT or a bulk API
// call. Each delivery waits for its batch and returns its own result:
//
//	b, err := batch.New(func(ctx context.Context, msgs []*message.Message) error {
//		return sink.WriteMany(ctx, msgs) // nil acks all; *batch.Errors fails some
//	}, batch.WithMaxSize(100), batch.WithMaxWait(50*time.Millisecond))
//	router.AddConsumerHandler("inventory", "orders", sub, b.NoPublishHandler)
//	defer b.Close()
//
// # Triggers
//
// A batch is flushed when it holds max_size messages (reason "size"), when
// its payload bytes reach max_bytes or the next message would exceed them
// ("bytes"), when max_wait has passed since its first message ("wait"), or
// on Close/Shutdown ("close"). At most max_in_flight batches run at once; a
// flushed batch waits, in order, for a free slot while new messages fill
// the next batch. WithMaxHold bounds linger plus queueing: a batch not
// started by then fails with *HoldError (RetryAfter), so a message is never
// held past the transport's ack deadline.
//
// # Results
//
// The Func returns nil (every message is acked), an *Errors naming failed
// messages by index or UUID (only those fail: they go on to retry or the
// DLQ, the others are acked), or any other error (every message fails with
// it). An *Errors naming an index or UUID outside the batch, or holding a
// nil error, fails the whole batch with ErrInvalidResult: a malformed
// result never acks anything. A panic in the Func is isolated: the batch
// is split in halves and each half run again (recursively), so only a
// message that panics alone fails with its *levee.PanicError (ErrorClass
// "panic": dead-lettered by the dlq slot); every other message gets the
// verdict of the last call that had it. A healthy message is never
// dead-lettered for a neighbour's panic, and the Func must tolerate seeing
// a message again, as it must for any redelivery.
//
// A message whose context ends before its batch is handed to the Func
// leaves the batch and is not passed to the Func: with a *LeftError (a
// deferral: no attempt) when its deadline passed, with the context error
// when it was cancelled. A
// message the Func already has keeps waiting for the Func's verdict even if
// its context ends: until the Func returns, its outcome is unknown, and
// neither an ack (maybe not written) nor a Nack (maybe written, then
// redelivered) would be right; returning early would also let outer
// middlewares modify the message while the Func reads it. When the contexts
// of all messages of a batch have ended, the Func's context is cancelled,
// which bounds that wait for a Func that honours its context; a message
// whose deadline passed then gets ErrGaveUp (a failed attempt), not the
// Func's context.Canceled. The Func's
// context carries the batch span; it is also cancelled when Shutdown's
// context ends.
//
// Close flushes every pending message through the Func (Shutdown(ctx) does
// the same but, when ctx ends, fails batches that have not started with
// ErrClosed and cancels running ones); later deliveries get ErrClosed. Both
// wait for every Func to return, so no goroutine outlives them.
//
// # Concurrency: batching needs messages in flight
//
// A batch can only grow as large as the number of messages the transport
// delivers at once, because each delivery waits in the batch. Watermill's
// router handles GoChannel messages concurrently, so batches fill. Most
// other transports hand a handler one message at a time (AMQP, JetStream,
// Redis Streams, SQL; Kafka one per partition): with them a batch never
// holds more than one message unless consumption is made concurrent, which
// the adapters package does. Pass that concurrency with WithConcurrency: New
// logs a warning when max_size is larger, since every batch would then wait
// max_wait. Likewise, keeping max_in_flight full batches busy needs
// max_in_flight × max_size deliveries in flight: while one batch holds
// every delivery, the next one cannot fill.
//
// # Place in the canonical order
//
// A Batcher is not a middleware but the innermost handler (slot 10, "the
// user's handler, or a batcher"). Every per-message concern (tracing,
// metrics, recover, dlq, dedup, breaker, priority, ratelimit, timeout) wraps
// b.Handler, so each message passes them before it joins a batch and each
// failure is retried or dead-lettered on its own:
//
//	stack.Middleware(b.Handler)
//
// A message holds its dedup claim while it waits in its batch: pass the
// deduplicator's lease with WithDedupLease(d.Lease()), and New logs a
// warning when it is not above max_wait.
//
// # Telemetry
//
// With WithTracerProvider, each batch gets one span ("batch <handler>",
// kind consumer) linked to every message's span context (the span in its
// context, or else the W3C traceparent in its metadata), and each message's
// span gets a "batch" event naming the batch span. With WithMeterProvider,
// levee.batch.size, levee.batch.duration and levee.batch.left are recorded
// (docs/TELEMETRY.md, section batch). Both are off by default.
//
// # Configuration
//
// The YAML section (type Config) is:
//
//	batch:
//	  max_size: 100        # default 100
//	  max_bytes: 1048576   # integer bytes; default no limit
//	  max_wait: 50ms       # default 50ms
//	  max_in_flight: 2     # default 2
//	  max_hold: 5s         # default no bound (config.Batcher: Deps.MaxHold); must exceed max_wait
//
// A zero or negative value in the section is an error naming the key
// (Config.Validate uses New's rules). In code, New refuses them too, but
// WithMaxHold(0), which means no bound.
//
// A Batcher is safe for concurrent use.
package batch
