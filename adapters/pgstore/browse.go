package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

var _ dlqops.Browser = (*Store)(nil)

// likePattern returns an ILIKE pattern matching text anywhere, with the
// pattern characters of text escaped.
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(text) + "%"
}

// Page implements dlqops.Browser with one keyset query, newest first: it
// walks the index of the filter's group, topic, handler, status or class
// (migration 0004) backwards from the cursor, and a text search uses the
// trigram index when the server has pg_trgm.
func (s *Store) Page(ctx context.Context, q dlqops.PageQuery) (dlqops.LetterPage, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := q.Validate(); err != nil {
		return dlqops.LetterPage{}, err
	}
	size := q.Size()
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	f := q.Filter
	f.Limit = 0
	cond := where(f, "", &args)
	if q.Class != "" {
		cond += " AND error_class = " + arg(text(q.Class))
	}
	if q.Text != "" {
		cond += " AND error ILIKE " + arg(likePattern(text(q.Text)))
	}
	if b := q.Before; b != nil {
		cond += " AND (failed_at, id) < (" + arg(b.At) + "::timestamptz, " + arg(text(b.ID)) + "::text COLLATE \"C\")"
	}
	sql := `SELECT ` + columns + ` FROM ` + s.table + ` WHERE ` + cond +
		` ORDER BY failed_at DESC, id DESC LIMIT ` + arg(size+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return dlqops.LetterPage{}, storeErr("page", err)
	}
	letters, err := collect(rows)
	if err != nil {
		return dlqops.LetterPage{}, storeErr("page", err)
	}
	page := dlqops.LetterPage{Letters: letters}
	if len(letters) > size {
		page.Letters = letters[:size]
		last := page.Letters[size-1]
		page.Next = &dlqops.Cursor{At: last.FailedAt, ID: last.ID}
	}
	return page, nil
}

// Hourly implements dlqops.Browser from the per-hour counters the
// triggers of migration 0005 keep: O(keys × hours).
func (s *Store) Hourly(ctx context.Context, q dlqops.HourlyQuery) (map[string][]int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := q.Validate(); err != nil {
		return nil, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	out := make(map[string][]int, len(q.Keys))
	stored := make(map[string][]string, len(q.Keys)) // the key as Add stored it (text) -> the keys asked
	keys := make([]string, 0, len(q.Keys))
	for _, k := range q.Keys {
		out[k] = make([]int, q.Hours)
		sk := text(k)
		if stored[sk] == nil {
			keys = append(keys, sk)
		}
		stored[sk] = append(stored[sk], k)
	}
	if len(q.Keys) == 0 {
		return out, nil
	}
	start := q.Start()
	rows, err := s.pool.Query(ctx, `SELECT key, hour, n FROM `+s.schema+`.group_hours
		WHERE dim = $1 AND key = ANY($2::text[]) AND hour >= $3 AND hour < $4 AND n > 0`,
		dimOf(by), keys, start, start.Add(time.Duration(q.Hours)*time.Hour))
	if err != nil {
		return nil, storeErr("hourly", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key  string
			hour time.Time
			n    int64
		)
		if err := rows.Scan(&key, &hour, &n); err != nil {
			return nil, storeErr("hourly", err)
		}
		h := q.Hour(hour)
		for _, k := range stored[key] {
			if h >= 0 {
				out[k][h] += int(n)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("hourly", err)
	}
	return out, nil
}

func (s *Store) eventsTable() string { return s.schema + ".letter_events" }

// AddEvent implements dlqops.Browser. An event of a letter that is not
// stored (pruned) is dropped: the events table references the letters.
func (s *Store) AddEvent(ctx context.Context, ev dlqops.Event) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := ev.Validate(); err != nil {
		return err
	}
	ev.Actor, ev.Detail, ev.ReplayUUID = text(ev.Actor), text(ev.Detail), text(ev.ReplayUUID)
	ev = dlqops.BoundEvent(ev)
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.eventsTable()+` (letter_id, at, actor, action, detail, replay_uuid)
		SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM `+s.table+` WHERE id = $1)`,
		ev.LetterID, ev.At, text(ev.Actor), text(ev.Action), text(ev.Detail), text(ev.ReplayUUID))
	if err != nil {
		return storeErr("add event", err)
	}
	return nil
}

// Events implements dlqops.Browser.
func (s *Store) Events(ctx context.Context, letterID string, limit int) ([]dlqops.Event, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if limit <= 0 || limit > dlqops.MaxEvents {
		return nil, errLimit(limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT letter_id, at, actor, action, detail, replay_uuid FROM (
		SELECT * FROM `+s.eventsTable()+` WHERE letter_id = $1 ORDER BY seq DESC LIMIT $2) e ORDER BY seq`, text(letterID), limit)
	if err != nil {
		return nil, storeErr("events", err)
	}
	defer rows.Close()
	out := []dlqops.Event{}
	for rows.Next() {
		var ev dlqops.Event
		if err := rows.Scan(&ev.LetterID, &ev.At, &ev.Actor, &ev.Action, &ev.Detail, &ev.ReplayUUID); err != nil {
			return nil, storeErr("events", err)
		}
		ev.At = ev.At.UTC()
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("events", err)
	}
	return out, nil
}

func errLimit(limit int) error {
	return fmt.Errorf("%w: event limit %d not in 1..%d", dlqops.ErrInvalidQuery, limit, dlqops.MaxEvents)
}
