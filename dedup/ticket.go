package dedup

import (
	"context"
	"sync/atomic"
	"time"
)

type ticketKey struct{}

// Ticket is the claim a delivery holds, carried in the message context
// while the handler runs when the store is a TxStore. A transactional done
// mark (the PostgreSQL inbox's MarkDone helpers) reads the key and the
// window from it, writes the mark in the handler's transaction and calls
// Settle; the middleware then writes no mark of its own. Safe for
// concurrent use.
type Ticket struct {
	key     string
	token   uint64
	window  time.Duration
	settled atomic.Bool
}

// TicketFrom returns the Ticket in ctx, if the dedup middleware put one.
func TicketFrom(ctx context.Context) (*Ticket, bool) {
	t, ok := ctx.Value(ticketKey{}).(*Ticket)
	return t, ok
}

// Key returns the message's identity as the store keys it (with the
// deduplicator's namespace, see StoreKey).
func (t *Ticket) Key() string { return t.key }

// Token returns the claim's token.
func (t *Ticket) Token() uint64 { return t.token }

// Window returns how long the done mark must be kept.
func (t *Ticket) Window() time.Duration { return t.window }

// Settle records that the done mark was written in the handler's own
// transaction. Call it only after the mark's statement succeeded, inside
// the transaction; if the transaction then fails, return an error from the
// handler (the claim is released) or let it end by the lease.
func (t *Ticket) Settle() { t.settled.Store(true) }

// Settled reports whether Settle was called.
func (t *Ticket) Settled() bool { return t.settled.Load() }
