// Package levee holds the vocabulary every Levee package shares, defined
// once here and imported everywhere else:
//   - the deferral contract (Deferral, AsDeferral, Defer), by which a layer
//     that declines to run a handler now says so without the message being
//     counted as failed;
//   - the error classes (Class, Classed, ClassOf) that decide what becomes
//     of a failed message;
//   - PanicError, the one error of a recovered panic;
//   - ErrInvalidConfig, matched by every package's invalid-config sentinel;
//   - the metadata keys Levee acts on (KeyDeliveryCount and the other
//     control keys).
//
// The middlewares live in the sub-packages: dlq, breaker, ratelimit,
// priority, batch, tracing, composed in the canonical order by
// middleware.Stack. This package imports only the standard library.
package levee
