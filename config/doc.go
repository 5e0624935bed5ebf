// Package config loads a levee.yaml and applies it to a Watermill router:
// each configured handler gets a middleware.Stack built from its sections,
// in the canonical order (see package middleware).
//
// # The file
//
// Load reads a levee.yaml: a transport section (decoded by the transport
// adapters: Config.Transport), a store section (Config.Store), schemas
// (Config.Schemas), per-handler sections keyed by router handler name
// (Config.Handler), and named shared resources (schedulers, breakers).
// Values may use ${VAR} and ${VAR:-default}; durations are Go durations
// ("250ms"), rates are "200/s" or "5/min", percentages "10%". Unknown keys
// are rejected, and every error wraps ErrInvalidConfig and names the file,
// the line and the key path:
//
//	levee.yaml:14: handlers.payments.timeout: "3x" is not a duration
//
// Each concern's package owns its section (its Config type and
// validation); this package lists the sections (DefaultSections) and maps
// them to slots. A section that configures the handler itself rather than
// a middleware (batch) is read with Handler.Batch, or built with
// Config.Batcher.
//
// # Applying it
//
// Apply attaches each configured handler's Stack to a router and errors on
// a configured handler the router does not have; Build does the same
// without a router. The Applied it returns gives the built concerns back,
// typed (Applied.Breaker, Scheduler, Limiter, Retrier), and closes them.
//
// # Concurrency
//
// A Config is read-only once loaded and safe for concurrent use. Applied's
// accessors and Close are safe for concurrent use; the stacks it attaches
// are safe for concurrent use.
package config
