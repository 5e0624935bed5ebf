// Package transport is the contract between the adapters facade and the
// per-transport packages (adapters/gochannel, adapters/amqp, adapters/kafka,
// adapters/nats, adapters/redis, adapters/postgres): the settings every
// transport shares (Settings), what each one declares it can do
// (Capabilities), what a per-transport New returns (Parts), and the
// sentinel errors they all wrap.
//
// It is a leaf: it imports no broker client and no other adapters package,
// and the per-transport packages import it, never the facade. Most
// services use the facade (adapters.Build from the YAML `transport`
// section, or adapters.New with options), which also applies Levee's trust
// boundary on publish; a per-transport New is for a service that links one
// transport only.
//
// # Concurrency safety
//
// The types here are plain values; Parts holds a publisher and a subscriber
// that are safe for concurrent use as their transports document.
package transport
