// Package redisdedup is a dedup.Store on Redis, shared by every replica
// of a service: one round trip to claim (a Lua script), one to finish (SET
// for the done mark, a Lua script for the release).
//
// Each identity is one string key, prefix + identity: "c:<token>:<lease
// end, Unix ms of the Redis clock>" while claimed, "d" once done. A claim
// key lives twice its lease, so a claim taken over after its lease ended
// is recognised (dedup's lease expiries); a done key lives the window.
// Redis's own clock (TIME) decides when a lease ends, so replicas with
// skewed clocks agree. Safe for concurrent use.
//
// A done mark in Redis cannot commit with the handler's database writes:
// a crash between the two runs the handler again after the lease. Where
// the side effects go to PostgreSQL, use adapters/pgdedup's inbox.
package redisdedup
