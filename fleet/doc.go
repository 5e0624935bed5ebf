// Package fleet is the vocabulary of Levee's fleet-wide state
// (docs/FLEET.md): what a fleet store implements (LeaseStore for the
// shared rate limits, BreakerStore for the shared breakers), the values
// they exchange, the fleet breaker's states and forces, and the
// on_store_error modes. It imports the standard library only.
//
// ratelimit.WithFleet and breaker.NewFleet use a store;
// adapters/fleetredis.Store is the Redis one. Implementations must use the
// store's own clock, never a replica's, and honour the context's deadline.
package fleet
