package transport

import "errors"

// Sentinel errors. Every error adapters.Build, adapters.New, a per-transport New or a subscriber returns for one of
// these conditions wraps the matching sentinel, so callers test them with
// errors.Is.
var (
	// ErrInvalidConfig is wrapped by every configuration error (unknown kind,
	// missing address, negative concurrency, ...).
	ErrInvalidConfig = errors.New("adapters: invalid transport configuration")

	// ErrUnreachable is wrapped when the broker cannot be reached within the
	// dial timeout. The message names the transport and the address.
	ErrUnreachable = errors.New("adapters: broker unreachable")

	// ErrAuth is wrapped when the broker refuses the credentials.
	ErrAuth = errors.New("adapters: broker refused the credentials")

	// ErrTopologyMismatch is wrapped when a queue or stream already exists with
	// other arguments than Levee declares (RabbitMQ PRECONDITION_FAILED). The
	// message says what differs.
	ErrTopologyMismatch = errors.New("adapters: existing queue declared with different arguments")

	// ErrClosed is returned by Subscribe and Publish after Close.
	ErrClosed = errors.New("adapters: transport closed")
)
