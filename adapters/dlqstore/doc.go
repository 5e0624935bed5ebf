// Package dlqstore builds a dlqops.Store from the YAML top-level `store:`
// section (dlqops.StoreConfig), whatever its kind: memory (the default, in
// the process), postgres (adapters/pgstore) or redis (adapters/redisstore).
// It lives in adapters so that core packages import no database client;
// cmd/levee (`levee dlq ...`) and examples/orders build their store with
// it.
//
//	store: {kind: redis, url: "redis://127.0.0.1:6379/0", prefix: levee}
//	store: {kind: postgres, url: "postgres://postgres@127.0.0.1:5432/levee", schema: levee}
//
// FromConfig is safe for concurrent use; so is the store it returns.
package dlqstore
