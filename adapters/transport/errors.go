package transport

import "errors"

// Sentinel errors. Every error adapters.Build, adapters.New, a per-transport New or a subscriber returns for one of
// these conditions wraps the matching sentinel, so callers test them with
// errors.Is.
var (
	// ErrInvalidConfig is wrapped by every configuration error (unknown kind,
	// missing address, negative concurrency, ...).
	ErrInvalidConfig = errors.New("levee/transport: invalid transport configuration")

	// ErrUnreachable is wrapped when the broker cannot be reached within the
	// dial timeout. The message names the transport and the address.
	ErrUnreachable = errors.New("levee/transport: broker unreachable")

	// ErrAuth is wrapped when the broker refuses the credentials.
	ErrAuth = errors.New("levee/transport: broker refused the credentials")

	// ErrTopologyMismatch is wrapped when a queue or stream already exists with
	// other arguments than Levee declares (RabbitMQ PRECONDITION_FAILED). The
	// message says what differs.
	ErrTopologyMismatch = errors.New("levee/transport: existing queue declared with different arguments")

	// ErrClosed is returned by Subscribe and Publish after Close.
	ErrClosed = errors.New("levee/transport: transport closed")
)
