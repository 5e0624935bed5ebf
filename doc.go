// Package levee holds the vocabulary every Levee package shares: the
// deferral contract (Deferral, AsDeferral, Defer), by which a layer that
// declines to run a handler now says so without the message being counted
// as failed.
//
// The middlewares live in the sub-packages: dlq, breaker, ratelimit,
// priority, batch, tracing, composed in the canonical order by
// middleware.Stack. This package imports only the standard library.
package levee
