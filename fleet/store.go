package fleet

import (
	"context"
	"errors"
	"time"
)

// LeaseRequest asks a shared GCRA for up to N tokens.
type LeaseRequest struct {
	// Key names the shared limit (the store adds its own prefix).
	Key string
	// Member is the asking replica's id; the store counts the live ones.
	Member string
	// Rate is the fleet's limit in tokens per second (0 admits nothing).
	Rate float64
	// Burst is the shared bucket's size: the most tokens that can be taken
	// at once after an idle period.
	Burst int
	// N is how many tokens are wanted; a negative N gives -N unspent tokens
	// back to the shared bucket.
	N int
	// MemberTTL is how long the member counts as live after this request.
	MemberTTL time.Duration
}

// Lease is a store's answer to a LeaseRequest.
type Lease struct {
	// Tokens is how many were granted, 0..N.
	Tokens int
	// RetryAfter is, when Tokens < N, the time until the next token is free
	// by the store's clock (negative: never, at rate 0).
	RetryAfter time.Duration
	// Members is how many replicas asked within their MemberTTL, at least 1.
	Members int
}

// LeaseStore grants leases from shared GCRA buckets. Implementations use
// the store's own clock (never the caller's), and must honour ctx's
// deadline. It must be safe for concurrent use.
type LeaseStore interface {
	Lease(ctx context.Context, r LeaseRequest) (Lease, error)
}

// OnStoreError is what a replica does while its store is failing or slower
// than its store timeout.
type OnStoreError uint8

const (
	// Local (the default) falls back to the replica's share of the fleet
	// limit, estimated from the last known number of replicas.
	Local OnStoreError = iota
	// FailOpen admits without the fleet limit (local limits still apply).
	FailOpen
	// FailClosed admits nothing until the store is back: a rate limit in
	// wait mode holds its messages as for a token (within max_wait and
	// max_hold, then defers them), in reject mode defers them; a breaker
	// holds them as if open.
	FailClosed
)

// String returns "local", "fail_open" or "fail_closed".
func (m OnStoreError) String() string {
	switch m {
	case FailOpen:
		return "fail_open"
	case FailClosed:
		return "fail_closed"
	}
	return "local"
}

// ErrBadMode is returned by ParseOnStoreError for an unknown value.
var ErrBadMode = errors.New(`levee/fleet: on_store_error must be "local", "fail_open" or "fail_closed"`)

// ParseOnStoreError parses "local" ("" too), "fail_open" or "fail_closed".
func ParseOnStoreError(s string) (OnStoreError, error) {
	switch s {
	case "", "local":
		return Local, nil
	case "fail_open":
		return FailOpen, nil
	case "fail_closed":
		return FailClosed, nil
	}
	return 0, ErrBadMode
}
