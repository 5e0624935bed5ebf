// Package adapters builds Levee's transports from configuration: Watermill
// publishers and subscribers for GoChannel (the embedded default), RabbitMQ
// (amqp091-go with watermill-amqp v3's topology and wire format, and a
// connection that redials after a broker restart), Kafka (watermill-kafka
// v3), NATS JetStream
// (watermill-nats v2), Redis Streams (watermill-redisstream) and PostgreSQL
// (watermill-sql v4), with concurrent consumption and a declared set of
// Capabilities per transport.
//
// # Layout
//
// This package is the facade: TransportConfig (the YAML `transport`
// section), Build and New, Transport, FanIn and RetryAfterMiddleware. Each
// transport lives in a package of its own with its own Config (the
// sub-section) and New: adapters/gochannel, adapters/amqp (with the
// connection Levee keeps), adapters/kafka, adapters/nats, adapters/redis
// and adapters/postgres. They share the contract in adapters/transport
// (Settings, Capabilities, Parts, the sentinel errors) and never import
// this package. The DLQ stores (adapters/pgstore, adapters/redisstore,
// adapters/dlqstore) import no transport.
//
// # Where it sits
//
// adapters is not a middleware and has no slot in the canonical order: it
// is what the router consumes from and the DLQ publishes to. Its
// Capabilities feed the middlewares' choices (a service passes MaxInFlight,
// and a max hold below AckDeadline, in config.Deps: adapters/service
// passes 80% of it as MaxHold, so a held message is Nacked before the
// broker redelivers it; NativeDelay says whether
// a Nack carrying a RetryAfter delay is delayed by the transport: NATS
// JetStream and PostgreSQL). The one router
// middleware it offers, (*Transport).Middleware, records a handler error's
// RetryAfter() delay in the message metadata so the transport can honour it
// on Nack; install it outermost, outside tracing, so it sees the final error.
// adapters is the only Levee package that imports broker clients.
//
// # Concurrent consumption
//
// Watermill subscribers hand a handler one message at a time (Kafka: one
// per partition). With `concurrency: N` the transport keeps up to N
// messages in flight per subscribed topic by competing consumers: N AMQP
// consumers (prefetch 1) on the queue, N workers fetching one message at a
// time from one JetStream durable pull consumer, N Redis consumer-group members, N SQL pollers
// locking rows with SKIP LOCKED, a Kafka group over at least N partitions,
// and, for GoChannel, one subscription capped at N. FanIn merges the
// subscriptions into one channel and takes a message from a subscription
// only after the previous one was acked or nacked, so N is a hard cap.
// Messages are forwarded unchanged: Ack and Nack reach the broker as they
// are (at-least-once). Per-key order is kept only on Kafka (records with
// the same levee_partition_key share a partition); concurrency elsewhere
// gives up order.
//
// # Errors
//
// New and Build validate the section (ErrInvalidConfig, naming the key),
// then probe the broker with a TCP dial bounded by dial_timeout
// (ErrUnreachable, naming the transport and the address) and connect
// (ErrAuth on refused credentials). They do not retry. A RabbitMQ queue that
// exists with other arguments fails Subscribe with ErrTopologyMismatch,
// saying what Levee declares and what the broker reports.
//
// # Configuration
//
// The YAML `transport` section decodes into TransportConfig:
//
//	transport:
//	  kind: nats
//	  concurrency: 8
//	  consumer_group: orders
//	  ack_deadline: 30s
//	  nats: {url: "nats://127.0.0.1:4222"}
//
// # Concurrency safety
//
// Transport, FanIn and the publishers and subscribers they hold are safe
// for concurrent use; Close is idempotent. No package-level mutable state.
package adapters
