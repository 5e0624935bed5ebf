package adapters

import "github.com/levee-dev/levee/adapters/transport"

// Sentinel errors, shared with the transport packages (they are the values
// of package transport). Every error Build, New or a subscriber returns for
// one of these conditions wraps the matching sentinel, so callers test them
// with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every configuration error (unknown kind,
	// missing address, negative concurrency, ...).
	ErrInvalidConfig = transport.ErrInvalidConfig

	// ErrUnreachable is wrapped when the broker cannot be reached within the
	// dial timeout. The message names the transport and the address.
	ErrUnreachable = transport.ErrUnreachable

	// ErrAuth is wrapped when the broker refuses the credentials.
	ErrAuth = transport.ErrAuth

	// ErrTopologyMismatch is wrapped when a queue or stream already exists with
	// other arguments than Levee declares (RabbitMQ PRECONDITION_FAILED). The
	// message says what differs.
	ErrTopologyMismatch = transport.ErrTopologyMismatch

	// ErrClosed is returned by Subscribe and Publish after Close.
	ErrClosed = transport.ErrClosed
)
