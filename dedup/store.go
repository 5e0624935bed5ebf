package dedup

import (
	"context"
	"time"
)

// Store keeps, per message identity, a claim with a lease or a done mark
// that lasts the window. Every implementation keeps the same semantics,
// checked by the conformance suite in dedup/deduptest:
//
//   - Claim on a key that is absent, released, or whose claim's lease or
//     done mark has expired records a claim with the caller's token for
//     lease and returns StatusClaimed (TookOver set when a claim's lease
//     had expired: its holder crashed or outlived the lease).
//   - Claim on a key claimed by a live lease returns StatusBusy with the
//     lease's remaining time; on a key marked done, StatusDone.
//   - Done marks the key done for window, whoever holds it (the handler
//     succeeded: a late mark must not be lost).
//   - Release deletes the key's claim if it still carries token; it leaves
//     a done mark and another token's claim alone.
//
// Each call is one round trip for a networked store, and each honours
// ctx's deadline. A Claim error is taken for an outage (the message is
// deferred and claimed again later) unless it declares the class
// "validation" (levee.Classed): the store refuses the key itself, the
// same way every time, and the middleware fails the message with
// ErrKeyRefused instead. Implementations are safe for concurrent use.
type Store interface {
	Claim(ctx context.Context, key string, token uint64, lease time.Duration) (Claim, error)
	Done(ctx context.Context, key string, token uint64, window time.Duration) error
	Release(ctx context.Context, key string, token uint64) error
}

// TxStore is a Store whose done mark a handler can write in its own
// database transaction (the PostgreSQL inbox in adapters/pgdedup). For such
// a store the middleware puts a *Ticket in the message context, and skips
// Store.Done after a handler that settled the ticket.
type TxStore interface {
	Store
	// MarksInTransaction is a marker; it does nothing.
	MarksInTransaction()
}

// Status is the outcome of a Claim.
type Status uint8

// The outcomes of a Claim.
const (
	// StatusClaimed: the caller holds the claim; run the handler.
	StatusClaimed Status = iota + 1
	// StatusBusy: another delivery holds a live claim; do not run.
	StatusBusy
	// StatusDone: the identity was handled within the window; a duplicate.
	StatusDone
)

// String returns "claimed", "busy" or "done".
func (s Status) String() string {
	switch s {
	case StatusClaimed:
		return "claimed"
	case StatusBusy:
		return "busy"
	case StatusDone:
		return "done"
	}
	return "unknown"
}

// Claim is the answer of Store.Claim.
type Claim struct {
	Status Status
	// Remaining is, for StatusBusy, the time left on the other claim's
	// lease (zero when the store cannot tell).
	Remaining time.Duration
	// TookOver is set with StatusClaimed when the key held a claim whose
	// lease had expired: a delivery crashed, or ran longer than the lease.
	TookOver bool
}

// DoneChecker is a Store that tells, without claiming, whether an identity
// is done within its window. The replayer asks it (dlqops
// WithReplayDoneCheck, `levee dlq replay --dedup-store`) to hold back the
// dead letter of a message that succeeded. Every Levee store implements
// it.
type DoneChecker interface {
	IsDone(ctx context.Context, key string) (bool, error)
}
