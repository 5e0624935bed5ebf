// Package dedup makes a consumer idempotent: a message whose identity was
// handled within a window is acked without running the handler again,
// and a message whose identity another delivery is handling is deferred,
// so the handler never runs twice at once for one identity.
//
// At-least-once delivery means duplicates: a crash between the handler's
// success and the ack, a broker restart, an ack deadline passed, a
// producer that published twice, a replay of a dead letter whose message
// had in fact succeeded. Dedup makes them harmless (docs/DEDUP.md).
//
// # Semantics, the same for every Store
//
//   - Before the handler, the identity is claimed with a lease (a token
//     of its own per delivery). A concurrent duplicate finds the claim
//     and is deferred under the deferral contract (levee.Deferral wrapping
//     ErrInProgress): not an attempt, never run in parallel.
//   - After success the identity is marked done for the window; when
//     the handler returned messages for the router to publish, once the
//     router acks the message (a failed publish Nacks it: the claim is
//     released and the redelivery runs). Close the Dedup after the router.
//   - After a failure (or a deferral from inside) the claim is released,
//     so the retry can run.
//   - A duplicate of a done identity returns nil without calling the
//     handler: acked, not an attempt, not a breaker outcome.
//   - A delivery that died holding a claim blocks its duplicates until the
//     lease ends; then one takes the claim over (counted as a lease expiry).
//
// Identity: the message UUID by default, or a KeyFunc (MetadataKey,
// JSONPointer). levee.KeyDedupID wins when set (but a replay's fallback,
// its levee.KeyOriginalUUID, yields to a key function that reads another
// identity, so a keyed consumer dedups a letter dead-lettered before this
// layer by its key): the middleware writes it
// on a message that fails (or is deferred), so a dead letter, and its
// replay, keep the identity (`levee dlq replay --new-identity` gives a
// fresh one). The handler never sees a KeyDedupID its key function gives
// anyway, so it cannot copy it onto the messages it publishes.
//
// # Stores
//
// MemStore (bounded, one process) lives here; the Redis store (one round
// trip to claim, one to finish) and the PostgreSQL inbox live in the
// adapters module (adapters/redisdedup, adapters/pgdedup), since core
// imports no database client. The PostgreSQL inbox is a TxStore: the
// handler writes the done mark in the same transaction as its own writes
// (a Ticket in the message context carries the claim), which is the only
// way to get exactly-once side effects into PostgreSQL. With every other
// store a crash between the handler's writes and the done mark runs the
// handler again after the lease. Conformance: dedup/deduptest.
//
// # Place in the canonical order
//
// The dedup slot sits inside dlq and outside the breaker
// (middleware.SlotDedup): a retry of the dlq goes through the claim again
// after the failure released it; a dead-lettered message is not marked
// done, so its replay runs; a duplicate never reaches the breaker, so it
// is no breaker outcome, and the dlq sees nil, so it is no attempt. The
// claim is held while the breaker, priority and rate limit wait: the lease
// must cover those waits (max hold) plus the handler's timeout.
//
// # Telemetry
//
// With WithMeterProvider: levee.dedup.duplicates, levee.dedup.claims.waited,
// levee.dedup.lease.expiries and levee.dedup.store.errors, counters of
// messages with the attributes handler and topic. A nil provider (the
// default) means off and costs nothing.
package dedup
