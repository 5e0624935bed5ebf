// Package fleettest holds scenarios a fleet BreakerStore must pass, run
// against every store Levee ships: the in-process MemStore
// (internal/fleet) and the Redis store (adapters/fleetredis, against a
// real server). Each returns the first violation as an error, so a test
// calls it and fails on a non-nil result.
package fleettest
