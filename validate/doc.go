// Package validate checks message payloads against JSON Schemas (draft
// 2020-12 by default, github.com/santhosh-tekuri/jsonschema/v6), one schema
// per topic, compiled once into a [Registry].
//
// On the consumer side, [Registry.Middleware] returns a *Error of class
// "validation" for an invalid or malformed payload instead of calling the
// handler. Placed inside the dlq slot (after dlq.Retrier.Middleware, for
// example as the first handler middleware), the dlq Retrier dead-letters the
// message at once, with the failing schema paths in levee_validation_errors.
// On the producer side, [Registry.Publisher] decorates a message.Publisher
// and refuses to publish a batch containing an invalid message, returning a
// *PublishError that lists every violation.
//
// The YAML section is [Config]: `schemas: {sms.send: schemas/sms.json}`.
//
// A Registry is immutable and safe for concurrent use; the middleware and
// the publisher are safe for concurrent use.
package validate
