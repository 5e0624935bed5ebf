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
// Values may use ${VAR} and ${VAR:-default} (a key holding ${ is an error:
// keys are not expanded), and
// mappings YAML anchors, aliases and merge keys (<<: *base, its own keys
// winning); durations are Go durations
// ("250ms"), rates are "200/s" or "5/min", percentages "10%". Unknown keys
// are rejected (with a suggestion for a likely misspelling), an explicit
// zero is rejected wherever the Go option rejects it (leave the key out
// for the default), an empty section (`dlq:`, `dlq: ~`) is the same as
// `{}` and checked as it is, and every error wraps ErrInvalidConfig and
// names the file, the line and the key path; a value it quotes is cut to
// 200 bytes, with a URL's password masked. A file is at most 4 MiB and
// 100000 values with its aliases expanded. Loading does not stop at the first
// problem: the error lists every one, a line each, sorted by line:
//
//	levee.yaml:14: handlers.payments.timeout: "3x" is not a duration
//	levee.yaml:17: handlers.payments.tiemout: unknown key "tiemout"; did you mean "timeout"? (known keys: ...)
//
// Check returns what loaded together with the problems, for a checker;
// Config.CheckDeadline rejects holds (max_hold, max_wait) and handler
// timeouts longer than the transport's ack deadline, and
// Config.CheckMaxHold longer than the max hold (Deps.MaxHold), as Build,
// adapters/service and `levee config check` do; Config.Warnings lists what is valid but may
// surprise (a rate of 0 pauses a handler; telemetry sections without
// providers; a named scheduler or breaker no handler refers to);
// Config.Settings gives every key's effective value and its
// source (the file's line and ${VAR}, or the default).
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
// without a router. Both reject holds longer than Deps.MaxHold and log
// Warnings through Deps.Logger. adapters/service does the whole wiring
// (transport, store, router) from a file in a few lines. The Applied it returns gives the built concerns back,
// typed (Applied.Breaker, Scheduler, Limiter, Retrier), and closes them.
//
// # Concurrency
//
// A Config is read-only once loaded and safe for concurrent use. Applied's
// accessors and Close are safe for concurrent use; the stacks it attaches
// are safe for concurrent use.
package config
