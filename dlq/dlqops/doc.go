// Package dlqops operates dead-letter queues: it records what the dlq
// Retrier dead-lettered and gives operators the tools to watch, group,
// replay and prune it. Package dlq routes (classify, retry, dead-letter);
// this package works on the letters dlq wrote, reading them with
// dlq.ParseDeadLetter and the dlq.Key* metadata keys. It imports dlq, never
// the reverse, and no database client: the PostgreSQL and Redis stores
// live in adapters/pgstore and adapters/redisstore, and
// adapters/dlqstore.FromConfig builds a Store from a StoreConfig.
//
// # Pieces
//
//   - [Store] records dead letters as [Record]s, bounded ([BoundRecord]),
//     with an ID that hashes the consumer and the content ([Record].ID);
//     [MemStore] is the in-memory one. dlq/dlqtest holds the conformance
//     suite every Store passes.
//   - [Monitor] is a Watermill handler for DLQ topics that records every
//     letter in a Store (group commit, store deadline, Nack on failure).
//   - [Replayer] republishes letters to their original topics: claimed in
//     the store, paced, at most max replays times, re-validated, with
//     lineage, only to allowed topics.
//   - [Pruner] and [PreviewPrune] apply a [Retention].
//   - [GroupGauges] publishes per-group gauges for alerts.
//   - [StoreConfig] is the YAML `store` section.
//
// # Options
//
// Every constructor takes the one [Option] type. WithClock, WithLogger,
// WithMeterProvider and WithStoreTimeout are shared by the constructors
// they apply to; the others serve one constructor and carry its name
// (WithMonitor*, WithReplay* and WithMaxReplays, WithGauge*). A
// constructor given an option it does not take returns an error wrapping
// ErrInvalidConfig.
//
// # Telemetry
//
// Instruments (docs/TELEMETRY.md, ## dlq operations) keep their
// levee.dlq.* names; a nil or absent meter provider means none, at no
// cost.
//
// docs/OPERATIONS.md has the operator's view and the `levee dlq` commands
// built on this package.
package dlqops
