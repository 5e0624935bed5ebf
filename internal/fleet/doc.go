// Package fleet is the client side of Levee's fleet-wide state: quota
// leases from a shared GCRA (Pool) and the vocabulary a store implements
// (LeaseStore, BreakerStore). The ratelimit and breaker packages build on
// it and re-export its types; the Redis store lives in the adapters module
// (adapters/fleetredis). docs/FLEET.md describes the design.
//
// A replica never does I/O on the per-message path: it spends tokens it
// leased earlier (one compare-and-swap), and a background goroutine per
// Pool fetches the next lease before the current one runs out. Leases are
// sized from the replica's own demand, capped at one lease period of the
// fleet rate, so a replica that dies strands at most one lease.
package fleet
