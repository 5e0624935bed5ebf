// Command consolebench seeds a dead-letter store with many letters, fast
// (PostgreSQL: COPY; Redis: the store's batched Add scripts, several at
// once), and times every page of the console on it (in process, through
// its http.Handler, so the figures are the store's queries and the
// rendering, not the network).
//
//	cd cmd
//	go run ./internal/console/consolebench -store postgres -url postgres://postgres@127.0.0.1:5432/test -n 1000000
//	go run ./internal/console/consolebench -store redis -url redis://127.0.0.1:6390/0 -n 1000000
//
// -seed=false times an already seeded store. The letters stay in the
// PostgreSQL schema or under the Redis key prefix -namespace names
// (default levee_console_bench): drop the schema or delete the keys when
// done. docs/CONSOLE.md holds the figures.
package main
