package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/adapters/internal/pgescape"
	"github.com/levee-dev/levee/dlq/dlqops"
)

const columns = `id, uuid, original_uuid, dlq_topic, original_topic, handler, consumer_group, fingerprint,
	error_class, error_type, error, attempts, replay_count, failed_at, received_at, metadata, payload,
	status, reason, replayed_at, replay_uuid, truncated`

const insertColumns = `id, uuid, original_uuid, dlq_topic, original_topic, handler, consumer_group, fingerprint,
	error_class, error_type, error, attempts, replay_count, failed_at, received_at, metadata, payload, status, reason,
	truncated`

const insertArity = 20

// text makes s storable in a text column: valid UTF-8 without NUL.
func text(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// Add implements dlqops.Store with multi-row INSERT ... ON CONFLICT (id) DO
// NOTHING statements of up to WithBatchRows rows each, every letter
// bounded by dlqops.BoundRecord.
func (s *Store) Add(ctx context.Context, letters ...dlqops.Record) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	total := 0
	for len(letters) > 0 {
		n := min(len(letters), s.batchRows)
		k, err := s.insert(ctx, letters[:n])
		total += k
		if err != nil {
			return total, err
		}
		letters = letters[n:]
	}
	return total, nil
}

func (s *Store) insert(ctx context.Context, letters []dlqops.Record) (int, error) {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO ` + s.table + ` (` + insertColumns + `) VALUES `)
	args := make([]any, 0, len(letters)*insertArity)
	for i, dl := range letters {
		if dl.ID == "" {
			return 0, fmt.Errorf("%w: dead letter without id", dlqops.ErrInvalidQuery)
		}
		dl = dlqops.BoundRecord(dl)
		// Escaped: encoding/json would replace invalid UTF-8 (a key or
		// value Kafka, NATS, Redis or AMQP carries as it came) with U+FFFD,
		// so a replay would publish altered metadata, and two keys could
		// become one.
		md, err := json.Marshal(pgescape.Escape(dl.Metadata))
		if err != nil {
			return 0, fmt.Errorf("%w: metadata of %q: %w", dlqops.ErrInvalidQuery, dl.ID, err)
		}
		if dl.Metadata == nil {
			md = []byte("{}")
		}
		st := dl.Status
		if st == "" {
			st = dlqops.StatusNew
		}
		payload := dl.Payload
		if payload == nil {
			payload = []byte{}
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for j := range insertArity {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('$')
			sb.WriteString(strconv.Itoa(i*insertArity + j + 1))
		}
		sb.WriteByte(')')
		args = append(args, text(dl.ID), text(dl.UUID), text(dl.OriginalUUID), text(dl.DLQTopic), text(dl.OriginalTopic),
			text(dl.Handler), text(dl.ConsumerGroup), text(dl.Fingerprint), text(dl.ErrorClass), text(dl.ErrorType),
			text(dl.Error), dl.Attempts, dl.ReplayCount, dl.FailedAt, dl.ReceivedAt, md, payload, string(st), text(dl.Reason),
			text(dl.Truncated))
	}
	sb.WriteString(` ON CONFLICT (id) DO NOTHING`)
	tag, err := s.pool.Exec(ctx, sb.String(), args...)
	if err != nil {
		return 0, storeErr("insert", err)
	}
	return int(tag.RowsAffected()), nil
}

func scanLetter(row pgx.Row) (dlqops.Record, error) {
	var (
		dl         dlqops.Record
		md         []byte
		status     string
		replayedAt *time.Time
	)
	err := row.Scan(&dl.ID, &dl.UUID, &dl.OriginalUUID, &dl.DLQTopic, &dl.OriginalTopic, &dl.Handler, &dl.ConsumerGroup,
		&dl.Fingerprint, &dl.ErrorClass, &dl.ErrorType, &dl.Error, &dl.Attempts, &dl.ReplayCount, &dl.FailedAt,
		&dl.ReceivedAt, &md, &dl.Payload, &status, &dl.Reason, &replayedAt, &dl.ReplayUUID, &dl.Truncated)
	if err != nil {
		return dl, err
	}
	dl.Status = dlqops.Status(status)
	dl.FailedAt, dl.ReceivedAt = dl.FailedAt.UTC(), dl.ReceivedAt.UTC()
	if replayedAt != nil {
		dl.ReplayedAt = replayedAt.UTC()
	}
	if dl.Payload == nil {
		dl.Payload = []byte{}
	}
	dl.Metadata = map[string]string{}
	if len(md) > 0 {
		if err := json.Unmarshal(md, &dl.Metadata); err != nil {
			return dl, fmt.Errorf("metadata of %q: %w", dl.ID, err)
		}
		if dl.Metadata == nil { // a JSON null: no metadata, as '{}'
			dl.Metadata = map[string]string{}
		}
		pgescape.Unescape(dl.Metadata)
	}
	return dl, nil
}

func collect(rows pgx.Rows) ([]dlqops.Record, error) {
	defer rows.Close()
	out := []dlqops.Record{}
	for rows.Next() {
		dl, err := scanLetter(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, rows.Err()
}

// where builds the WHERE conditions of f on columns prefixed with p
// ("" or "x."), appending the arguments.
func where(f dlqops.Filter, p string, args *[]any) string {
	var conds []string
	arg := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	// Values go through text, as Add stored them: a name with a NUL byte
	// or invalid UTF-8 matches its letters instead of failing the query.
	if len(f.IDs) > 0 {
		ids := make([]string, len(f.IDs))
		for i, id := range f.IDs {
			ids[i] = text(id)
		}
		conds = append(conds, p+"id = ANY("+arg(ids)+"::text[])")
	}
	if f.Group != "" {
		conds = append(conds, p+"fingerprint = "+arg(text(f.Group)))
	}
	if f.Topic != "" {
		conds = append(conds, p+"original_topic = "+arg(text(f.Topic)))
	}
	if f.Handler != "" {
		conds = append(conds, p+"handler = "+arg(text(f.Handler)))
	}
	if f.DLQTopic != "" {
		conds = append(conds, p+"dlq_topic = "+arg(text(f.DLQTopic)))
	}
	if len(f.Statuses) > 0 {
		st := make([]string, len(f.Statuses))
		for i, v := range f.Statuses {
			st[i] = string(v)
		}
		conds = append(conds, p+"status = ANY("+arg(st)+"::text[])")
	}
	if !f.Since.IsZero() {
		conds = append(conds, p+"failed_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, p+"failed_at < "+arg(f.Until))
	}
	if len(conds) == 0 {
		return "TRUE"
	}
	return strings.Join(conds, " AND ")
}

// Get implements dlqops.Store.
func (s *Store) Get(ctx context.Context, id string) (dlqops.Record, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	dl, err := scanLetter(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM `+s.table+` WHERE id = $1`, text(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return dl, fmt.Errorf("%w: %q", dlqops.ErrNotFound, id)
	}
	if err != nil {
		return dl, storeErr("get", err)
	}
	return dl, nil
}

// List implements dlqops.Store.
func (s *Store) List(ctx context.Context, f dlqops.Filter) ([]dlqops.Record, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var args []any
	q := `SELECT ` + columns + ` FROM ` + s.table + ` WHERE ` + where(f, "", &args) + ` ORDER BY failed_at, id`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, storeErr("list", err)
	}
	out, err := collect(rows)
	if err != nil {
		return nil, storeErr("list", err)
	}
	return out, nil
}

// Claim implements dlqops.Store with SELECT ... FOR UPDATE SKIP LOCKED: rows
// another transaction is claiming are skipped, rows under a live lease are
// excluded, and the claimed rows get the owner and lease in the same
// statement.
func (s *Store) Claim(ctx context.Context, r dlqops.ClaimRequest) ([]dlqops.Record, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	f := r.Filter
	if len(f.Statuses) == 0 {
		f.Statuses = []dlqops.Status{dlqops.StatusNew}
	}
	args := []any{r.Owner, r.Now.Add(r.Lease), r.Now, r.Limit}
	cond := where(f, "", &args)
	if r.After != nil {
		args = append(args, r.After.At, r.After.ID)
		cond += ` AND (failed_at, id) > ($` + strconv.Itoa(len(args)-1) + `, $` + strconv.Itoa(len(args)) + `)`
	}
	sql := `WITH c AS (
		SELECT id FROM ` + s.table + `
		WHERE ` + cond + ` AND (claim_owner IS NULL OR claim_until <= $3)
		ORDER BY failed_at, id LIMIT $4
		FOR UPDATE SKIP LOCKED)
	UPDATE ` + s.table + ` t SET claim_owner = $1, claim_until = $2 FROM c WHERE t.id = c.id
	RETURNING ` + prefixed("t.", columns)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, storeErr("claim", err)
	}
	out, err := collect(rows)
	if err != nil {
		return nil, storeErr("claim", err)
	}
	slices.SortFunc(out, func(a, b dlqops.Record) int {
		if c := a.FailedAt.Compare(b.FailedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// claimDone reports ErrNotFound or ErrClaimLost after an update that
// matched no row.
func (s *Store) claimDone(ctx context.Context, id, owner string, affected int64) error {
	if affected == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.table+` WHERE id = $1)`, id).Scan(&exists); err != nil {
		return storeErr("claim check", err)
	}
	if !exists {
		return fmt.Errorf("%w: %q", dlqops.ErrNotFound, id)
	}
	return fmt.Errorf("%w: %q is not held by %q", dlqops.ErrClaimLost, id, owner)
}

// MarkReplayed implements dlqops.Store.
func (s *Store) MarkReplayed(ctx context.Context, id, owner, replayUUID string, at time.Time) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.table+` SET status = 'replayed', replayed_at = $3, replay_uuid = $4,
		reason = '', claim_owner = NULL, claim_until = NULL WHERE id = $1 AND claim_owner = $2`, id, owner, at, text(replayUUID))
	if err != nil {
		return storeErr("mark replayed", err)
	}
	return s.claimDone(ctx, id, owner, tag.RowsAffected())
}

// Release implements dlqops.Store.
func (s *Store) Release(ctx context.Context, id, owner, reason string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.table+` SET reason = $3, claim_owner = NULL, claim_until = NULL
		WHERE id = $1 AND claim_owner = $2`, id, owner, text(reason))
	if err != nil {
		return storeErr("release", err)
	}
	return s.claimDone(ctx, id, owner, tag.RowsAffected())
}

// SetStatus implements dlqops.Store: oldest first, setStatusChunk
// letters per statement, each within the store timeout, so a selection of
// any size changes (one UPDATE of 28,500 letters outlasted the 5 s
// timeout), and an interrupted call keeps what it changed (the count
// returned with the error).
func (s *Store) SetStatus(ctx context.Context, f dlqops.Filter, st dlqops.Status) (int, error) {
	if !st.Valid() {
		return 0, fmt.Errorf("%w: unknown status %q", dlqops.ErrInvalidQuery, st)
	}
	if err := f.Validate(); err != nil {
		return 0, err
	}
	args := []any{string(st)}
	cond := where(f, "", &args) + ` AND claim_owner IS NULL AND status <> $1`
	args = append(args, 0)
	// The outer condition is checked again on a row another statement
	// changed meanwhile (a claim, the same status), so it is not counted.
	sql := `UPDATE ` + s.table + ` SET status = $1 WHERE id IN (SELECT id FROM ` + s.table + ` WHERE ` + cond +
		` ORDER BY failed_at, id LIMIT $` + strconv.Itoa(len(args)) + `) AND claim_owner IS NULL AND status <> $1`
	n := 0
	for {
		chunk := setStatusChunk
		if f.Limit > 0 {
			if chunk = min(chunk, f.Limit-n); chunk <= 0 {
				return n, nil
			}
		}
		args[len(args)-1] = chunk
		if err := ctx.Err(); err != nil {
			return n, err
		}
		qctx, cancel := s.deadline(ctx)
		tag, err := s.pool.Exec(qctx, sql, args...)
		cancel()
		if err != nil {
			return n, storeErr("set status", err)
		}
		k := int(tag.RowsAffected())
		n += k
		if k < chunk {
			return n, nil
		}
	}
}

// setStatusChunk bounds the letters one SetStatus statement changes.
const setStatusChunk = 1000
