package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// pruneChunk bounds the letters one prune statement deletes: a single
// DELETE of every letter past the retention took 12.7 s for 171,000
// letters on the project's machine (the group counters' triggers run
// with it), so past the store timeout (5 s by default) it was cancelled
// and rolled back, and a backlog that large was never pruned. 1,000
// letters took 0.66 s there.
const pruneChunk = 1000

// Prune implements dlqops.Store: oldest first, pruneChunk letters per
// statement, each statement within the store timeout, so a backlog of any
// size is pruned and an interrupted prune keeps what it deleted (the
// count returned with the error).
func (s *Store) Prune(ctx context.Context, r dlqops.Retention, now time.Time) (int, error) {
	if r.MaxAge < 0 || r.MaxCount < 0 {
		return 0, fmt.Errorf("%w: negative retention", dlqops.ErrInvalidQuery)
	}
	n := 0
	if r.MaxAge > 0 {
		k, err := s.pruneChunks(ctx, "prune by age", `failed_at < $1`, now.Add(-r.MaxAge))
		n += k
		if err != nil {
			return n, err
		}
	}
	if r.MaxCount > 0 {
		// The newest letter past the max count; it and every older one go.
		var at time.Time
		var id string
		qctx, cancel := s.deadline(ctx)
		err := s.pool.QueryRow(qctx, `SELECT failed_at, id FROM `+s.table+
			` ORDER BY failed_at DESC, id DESC OFFSET $1 LIMIT 1`, r.MaxCount).Scan(&at, &id)
		cancel()
		if errors.Is(err, pgx.ErrNoRows) {
			return n, nil
		}
		if err != nil {
			return n, storeErr("prune by count", err)
		}
		k, err := s.pruneChunks(ctx, "prune by count", `(failed_at, id) <= ($1, $2)`, at, id)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// pruneChunks deletes the letters matching cond, oldest first, pruneChunk
// at a time, each statement within the store timeout, until none is left
// or ctx ends; it returns how many it deleted.
func (s *Store) pruneChunks(ctx context.Context, op, cond string, args ...any) (int, error) {
	sql := `DELETE FROM ` + s.table + ` WHERE id IN (SELECT id FROM ` + s.table + ` WHERE ` + cond +
		` ORDER BY failed_at, id LIMIT ` + strconv.Itoa(pruneChunk) + `)`
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		qctx, cancel := s.deadline(ctx)
		tag, err := s.pool.Exec(qctx, sql, args...)
		cancel()
		if err != nil {
			return n, storeErr(op, err)
		}
		k := int(tag.RowsAffected())
		n += k
		if k < pruneChunk {
			return n, nil
		}
	}
}
