package pgstore

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/dlq"
)

// Attempts is a dlq.AttemptStore in PostgreSQL: one row a failing message
// in <schema>.attempts (migration 0002), incremented by one upsert.
// Expired rows count as absent and are deleted in the background of
// Fail (every purgeEvery calls, up to purgeRows rows) or by Purge. A
// UUID that could not be a key as it is (long, NUL, invalid UTF-8) is
// kept as its SHA-256 (attemptUUID). It is safe for concurrent use, by
// any number of processes.
type Attempts struct {
	s     *Store
	table string
	calls atomic.Uint64
}

var _ dlq.AttemptStore = (*Attempts)(nil)

// Every purgeEvery calls, Fail deletes up to purgeRows expired records:
// more than the purgeEvery records those calls can have added, so expired
// records cannot pile up however many distinct messages fail (with 1000,
// 24 of every 1024 stayed for ever when each failing message was new).
const (
	purgeEvery = 1024
	purgeRows  = 2 * purgeEvery
)

// Attempts returns the store's shared attempt counter, on the same pool
// and schema: pass it to dlq.WithAttemptStore.
func (s *Store) Attempts() *Attempts {
	return &Attempts{s: s, table: s.schema + ".attempts"}
}

// Fail implements dlq.AttemptStore with INSERT ... ON CONFLICT DO UPDATE
// ... RETURNING: the row restarts at 1 when it had expired. The record
// expires ttl after now (the caller's clock). Errors wrap dlqops.ErrStore.
func (a *Attempts) Fail(ctx context.Context, handler, uuid string, now time.Time, ttl time.Duration) (int, time.Time, error) {
	ctx, cancel := a.s.deadline(ctx)
	defer cancel()
	var (
		n     int
		first time.Time
	)
	err := a.s.pool.QueryRow(ctx, `INSERT INTO `+a.table+` AS a (handler, uuid, attempts, first_at, expires_at)
		VALUES ($1, $2, 1, $3, $4)
		ON CONFLICT (handler, uuid) DO UPDATE SET
			attempts = CASE WHEN a.expires_at <= $3 THEN 1 ELSE a.attempts + 1 END,
			first_at = CASE WHEN a.expires_at <= $3 THEN $3 ELSE a.first_at END,
			expires_at = $4
		RETURNING attempts, first_at`, text(handler), attemptUUID(uuid), now, now.Add(ttl)).Scan(&n, &first)
	if err != nil {
		return 0, time.Time{}, storeErr("attempts", err)
	}
	if a.calls.Add(1)%purgeEvery == 0 {
		// housekeeping: a failure here changes no count, and the next
		// purge retries
		_, _ = a.Purge(ctx, now)
	}
	return n, first.UTC(), nil
}

var _ dlq.AttemptReader = (*Attempts)(nil)

// Attempts implements dlq.AttemptReader: the row's count and first
// failure, 0 when there is none or it expired before now. Errors wrap
// dlqops.ErrStore.
func (a *Attempts) Attempts(ctx context.Context, handler, uuid string, now time.Time) (int, time.Time, error) {
	ctx, cancel := a.s.deadline(ctx)
	defer cancel()
	var (
		n     int
		first time.Time
	)
	err := a.s.pool.QueryRow(ctx, `SELECT attempts, first_at FROM `+a.table+` WHERE handler = $1 AND uuid = $2 AND expires_at > $3`,
		text(handler), attemptUUID(uuid), now).Scan(&n, &first)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, storeErr("attempts", err)
	}
	return n, first.UTC(), nil
}

// Purge deletes up to purgeRows (2048) records that expired before now
// and returns how many.
func (a *Attempts) Purge(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel := a.s.deadline(ctx)
	defer cancel()
	tag, err := a.s.pool.Exec(ctx, `DELETE FROM `+a.table+` WHERE (handler, uuid) IN (
		SELECT handler, uuid FROM `+a.table+` WHERE expires_at < $1 LIMIT $2)`, now, purgeRows)
	if err != nil {
		return 0, storeErr("purge attempts", err)
	}
	return int(tag.RowsAffected()), nil
}
