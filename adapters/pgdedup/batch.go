package pgdedup

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/dedup"
)

// MarkDoneAll is MarkDone for a batch, in one statement: msgCtxs are the
// message contexts of the batch (each carrying its dedup.Ticket). It
// returns, per message, whether its mark was written (and its ticket
// settled): a false entry's identity was already done by another
// delivery, so the caller must leave that message's writes out of the
// transaction (mark first, then write for the marked ones). A context
// without a ticket makes it return ErrNoTicket and write nothing.
func (s *Store) MarkDoneAll(ctx context.Context, tx pgx.Tx, msgCtxs []context.Context) ([]bool, error) {
	tickets := make([]*dedup.Ticket, len(msgCtxs))
	keys := make([]string, 0, len(msgCtxs))
	tokens := make([]int64, 0, len(msgCtxs))
	windows := make([]int64, 0, len(msgCtxs))
	first := make(map[string]int, len(msgCtxs))
	for i, mc := range msgCtxs {
		t, ok := dedup.TicketFrom(mc)
		if !ok {
			return nil, ErrNoTicket
		}
		tickets[i] = t
		k := storeKey(t.Key())
		if _, dup := first[k]; dup {
			continue // one identity twice in a batch: the first one's mark counts
		}
		first[k] = i
		keys = append(keys, k)
		tokens = append(tokens, int64(t.Token()))
		windows = append(windows, max(1, t.Window().Milliseconds()))
	}
	rows, err := tx.Query(ctx, s.q.markAll, keys, tokens, windows)
	if err != nil {
		return nil, wrapErr("mark done", err)
	}
	marked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrapErr("mark done", err)
	}
	out := make([]bool, len(msgCtxs))
	for _, k := range marked {
		if i, ok := first[k]; ok {
			out[i] = true
			tickets[i].Settle()
		}
	}
	return out, nil
}
