// Package pgstore is the PostgreSQL implementation of dlqops.Store, through
// pgx v5. It keeps the dead letters recorded by dlqops.Monitor in one table,
// <schema>.dead_letters, created by embedded, versioned migrations
// (migrations/*.sql, applied by Migrate under an advisory lock and recorded
// in <schema>.levee_schema_migrations), with indexes for the group
// (fingerprint), the original topic, the handler and the failure time.
//
// Where it sits: outside the middleware order. The Monitor writes to it,
// the Replayer and the `levee dlq` CLI read and claim from it, and
// dlqops.GroupGauges reads it at metric collection time. Core packages do not
// import it (they must not import database clients); adapters and cmd do.
//
// Inserts are batched: Add sends multi-row INSERT ... ON CONFLICT (id) DO
// NOTHING statements of up to WithBatchRows rows, so a redelivered dead
// letter is ignored. Replay claims use SELECT ... FOR UPDATE SKIP LOCKED
// plus a lease column, so replayers in several processes never take the
// same row while its lease holds, and a crashed replayer's rows become
// claimable again when the lease ends.
//
// The console's reads (dlqops.Browser, docs/CONSOLE.md): migration 0004
// adds the status and class indexes, the letters' events table
// (letter_events, deleted with its letter) and a trigram index on the
// error when the server has pg_trgm; migration 0005 adds group_counts and
// group_hours, counters that statement-level triggers keep on every
// insert, status change and delete, so Groups without a filter (or naming
// one group of the grouping) and Hourly read O(groups) rows; migration 0006
// adds group_totals (each group's letters and newest failure, kept by the
// same triggers and indexed in both orders of dlqops.GroupQuery), so a
// page of groups reads O(page) rows after a GroupQuery.After cursor (the
// index walked to an Offset: O(offset + page)) and CountGroups counts one
// row a group; SumGroups (dlqops.GroupSummer) sums the groups past an offset
// with one aggregate of the letters outside the first ones, one row
// back. The triggers
// take a fifth to a third of a 100-letter insert's time and about 0.3 ms of
// a one-letter insert on a table of a million letters (EXPLAIN ANALYZE;
// docs/CONSOLE.md; BenchmarkAddCounters compares Add with and without
// them); the migration counts the letters already stored, in its
// transaction.
//
// A Store is safe for concurrent use. Config: the YAML top-level `store`
// section, `store: {kind: postgres, url: "postgres://...", schema: levee}`
// (read by cmd/levee).
package pgstore
