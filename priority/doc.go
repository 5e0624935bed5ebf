// Package priority is Levee's aged priority scheduler: a fixed number of
// slots (the concurrency a downstream can take) shared by any number of
// handlers and routers in the process. Urgent messages go first, and aging
// guarantees that nothing starves.
//
// # Use
//
//	s, err := priority.NewScheduler(priority.WithSlots(8), priority.WithAging(500*time.Millisecond))
//	...
//	defer s.Close()
//	payments.AddMiddleware(s.Middleware)
//	reports.AddMiddleware(s.Middleware) // same slots
//
// Middleware makes each message wait for a slot before calling the handler
// and releases it when the handler returns, with an error, or panics.
// When a slot frees, the waiting message with the highest effective
// priority gets it:
//
//	effective priority = base priority + waited time / aging
//
// and messages with equal effective priority go in arrival order (FIFO).
// Because every waiter's effective priority grows at the same rate,
// comparing two waiters reduces to comparing base − enqueued/aging, a
// constant per waiter: the queue is a heap on that key, O(log n) per
// operation, with pooled waiters, so steady state allocates nothing per
// message.
//
// # Priority
//
// A message's base priority is the integer in its levee_priority metadata
// (levee.KeyPriority; publishers use Set), higher first, clamped to
// MinPriority..MaxPriority (0..9, AMQP's range). A missing value takes the
// default (WithDefaultPriority, or per handler WithHandlerPriority); a
// value that is not an integer takes the default too and is counted
// (Stats.InvalidPriority, metric levee.priority.invalid) each time the
// message passes the scheduler, retries included. Enormous or
// negative values are clamped, never overflow. WithPriorityFunc computes
// the priority from the message instead.
//
// # The aging bound
//
// A message of priority p that has waited (MaxPriority − p)·aging is
// overtaken by no later arrival, whatever its priority: a message arriving
// Δ after it has effective priority at most MaxPriority − Δ/aging relative
// to it, and ties go to the earlier arrival. So a message of priority p is
// overtaken only by messages already waiting ahead of it and by arrivals
// within the next (MaxPriority − p)·aging, and its wait is at most the time
// the slots take to serve those:
//
//	wait(p) ≤ (ahead at arrival + arrivals ranked higher within (MaxPriority − p)·aging) / throughput
//
// With the defaults (aging 500ms) a priority-0 message stops being
// overtaken after 4.5s. WithAging(0) disables aging (strict priority),
// under which low priorities starve as long as higher ones keep the slots
// busy; it exists for comparison. TestAgingBound and
// TestAgingBoundUnderSaturation check both statements.
//
// # Bounds and rejections
//
// WithMaxWaiting bounds the queue: when it is full, the message with the
// lowest effective priority (the newest on ties), waiting or arriving, is
// shed with ErrQueueFull. WithMaxWait bounds one message's wait and
// WithMaxHold (the shared hold bound, below the transport's ack deadline)
// does the same; past the shorter, the message leaves with ErrMaxWait. A
// cancelled message context ends the wait with the context's error. Close
// rejects every waiter at once with ErrClosed, which also matches
// context.Canceled. Every rejection is a *RejectError with RetryAfter, so
// the handler is not called and the message is Nacked, or redelivered after
// the delay where the transport supports it: nothing is dropped or acked
// unprocessed. A rejection is a levee.Deferral: the dlq does not count it
// as an attempt and the breaker not as a failure.
//
// A rejected message keeps its age: the Scheduler remembers its first
// arrival by handler and UUID (the last ArrivalMemory rejected messages, each
// for ArrivalTTL after its RetryAfter, in process,
// never from metadata a producer could forge; a message without a UUID by
// its content), and its redelivery ages
// from there, so the aging bound holds for a message shed again and again
// (plus the redelivery delay). TestShedRedeliveryKeepsAging checks it.
//
// # When priority matters
//
// Priority only reorders messages that wait at the same time. GoChannel
// (and Watermill routers with several handlers) deliver concurrently, so
// many messages can wait for a slot; most other transports hand a handler
// one message at a time and wait for its result (AMQP, JetStream, Redis
// Streams, SQL; Kafka per partition), and then the scheduler only limits
// concurrency: messages run in arrival order. Levee's adapters make
// consumption concurrent for those transports so priority has something to
// reorder. TestRouterVIPOvertakesBulk and
// TestSequentialConsumptionKeepsArrivalOrder show both cases.
//
// # Place in the canonical order
//
// Priority sits in slot 7 (middleware.SlotPriority): inside tracing,
// metrics, recover, dlq (retry), dedup and breaker, so a paused or backing-off
// handler never holds a shared slot, and outside ratelimit and timeout, so
// the slot holder is the one that waits for a token and whose attempt is
// bounded. Each retry attempt waits for a slot again.
//
// # Concurrency
//
// A Scheduler is safe for concurrent use by any number of goroutines,
// handlers and routers. One mutex guards the queue; no callback runs under
// it (a WithPriorityFunc runs before the message queues).
//
// # Telemetry
//
// With WithMeterProvider: levee.priority.queue.depth (per priority),
// levee.priority.slots.in_use, levee.priority.slots.limit,
// levee.priority.wait.duration (per handler, topic and priority),
// levee.priority.shed (per reason) and levee.priority.invalid; see
// docs/TELEMETRY.md. When the message context carries a recording span,
// the middleware adds the event levee.priority.acquired (base and
// effective priority, wait) or levee.priority.rejected. Stats returns a
// snapshot with per-priority wait histograms (p50, p99, max) for reports.
//
// # Configuration
//
// Named schedulers are shared by handlers:
//
//	schedulers:
//	  shared: {slots: 8, aging: 500ms, max_waiting: 10000, max_wait: 30s, default_priority: 0}
//	handlers:
//	  payments:
//	    priority: {scheduler: shared}
//
// SchedulerConfig is one entry of `schedulers:`, Config a handler's
// `priority:` section; both have Validate and Options.
package priority
