// Package chaos is a fault-injection suite for Levee pipelines with a
// checker that accounts for every message, in the manner of Jepsen's
// at-least-once checkers.
//
// A [Plan] (YAML, seeded) says how many messages to send, with which mix
// of intended fates ([Kind]: healthy, transient that succeeds on call k,
// poison, permanent, validation, panic, forged control metadata), over
// which transport and DLQ store, and which faults to inject when:
// downstream outages shorter and longer than the breaker's max hold,
// latency spikes past the timeout, overloads that make the rate limiter
// and the scheduler shed, a stalled DLQ store, a private broker stopped
// cleanly or killed, the consumer process SIGKILLed and restarted, and a
// [dlqops.Replayer] replaying dead letters while it all happens.
//
// With consumer_process, the handlers run in a separate OS process: the
// runner starts its own executable again, and [ConsumerMain], called
// first in main (or TestMain), turns it into the consumer. The consumer
// appends every event to a file of its own before the event's effect, so
// a SIGKILL loses none of them; the runner tails the files into its
// [Ledger].
//
// [Run] builds the canonical stack from a Levee configuration file
// (config.Load and config.Apply, with tracing and metrics on
// real SDK providers, recover, dlq with a real store behind a dlqops.Monitor,
// a breaker with drain, priority, ratelimit and timeout, and one batch
// handler), sends the messages, plays each message's fate in the handler,
// and records every delivery, handler call, success, ack, Nack, dead
// letter, replay and store row in a [Ledger]. [Check] then sorts every
// message ID: lost, unexpected, duplicated (and whether a documented
// at-least-once window explains it), wrongly dead-lettered, poison not
// dead-lettered, wrong class, attempts other than the fate's (max_attempts
// for poison), forged metadata honoured, and order violations where the
// transport promises order.
//
// The ledger also measures every delivery's hold (from the outermost
// middleware to its ack or Nack) against the transport's ack deadline and
// records the broker's delivery count of each delivery, so a duplicate
// caused by a delivery held past the deadline, or by a broker delivering
// a message again as new (its count back to 1), is explained precisely.
//
// With dedup: true, the plain handler's success commits a side effect (a
// PostgreSQL row) in one transaction with the done mark of the PostgreSQL
// inbox (adapters/pgdedup), which the stack's dedup section uses as its
// store; the checker then counts duplicated side effects.
//
// The command chaos/cmd/chaos runs a plan file and exits non-zero when the
// report fails; docs/RELIABILITY.md documents the runs and what they
// found.
//
// A Ledger is safe for concurrent use; a Plan is read-only once validated.
package chaos
