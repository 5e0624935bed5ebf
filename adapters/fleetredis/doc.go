// Package fleetredis keeps Levee's fleet-wide state on Redis: the shared
// GCRA buckets that fleet rate limits lease tokens from, and the fleet
// breakers' shared windows, state machines, probe leases and kill
// switches (docs/FLEET.md). Store implements ratelimit.FleetStore and
// breaker.FleetStore; every call is one Lua script run, one round trip,
// timed by the server's clock (TIME), never a replica's.
//
// # Data layout
//
// Every key starts with the prefix (DefaultPrefix "levee:fleet"), P below.
//
//	P:rl:<key>:tat     string, the GCRA's theoretical arrival time (µs),
//	                   expires once the bucket is full again
//	P:rl:<key>:m       sorted set of live replicas, score last lease (µs)
//	P:br:<key>:s       hash, the breaker state: st gen until probe pu da base
//	P:br:<key>:w       hash, the shared window: "<bucket>:s" and "<bucket>:f"
//	                   counts, ten buckets per window
//	P:br:<key>:m       sorted set of live replicas, score last report (ms)
//	P:br:<key>:force   "open" or "closed" while an operator forces it; never
//	                   expires
//
// Every key but the force expires by itself, so a fleet that goes away
// leaves nothing behind, and the number of keys is bounded by the live
// limits and breakers.
package fleetredis
