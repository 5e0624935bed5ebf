package pgstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// groupColumn maps a grouping to its column.
func groupColumn(by dlqops.GroupBy) string {
	switch by {
	case dlqops.GroupByTopic:
		return "original_topic"
	case dlqops.GroupByHandler:
		return "handler"
	}
	return "fingerprint"
}

// Groups implements dlqops.Store. Without a filter, or with one naming a
// group of the grouping asked for, it takes the page from the totals of
// migration 0006 in the order's index, then reads the page's counters of
// 0005 and probes each of its groups' indexes (countedGroups):
// O(page log n). Otherwise it runs up to three statements: with a Limit or
// Offset, the page's keys (an aggregate of the filtered letters by key,
// ordered and cut in SQL); one hash aggregate by (key, topic, handler)
// over the filtered letters (of the page), folded into groups here (a
// GROUP BY key with array_agg(DISTINCT ...) would force a sorted scan, 12x
// slower over 1,000,000 rows); then one lookup per group of its newest
// letter for the sample error.
func (s *Store) Groups(ctx context.Context, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := q.Validate(); err != nil {
		return nil, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	f := q.Filter
	f.Limit = 0
	col := groupColumn(by)
	var window any
	if !q.WindowStart.IsZero() {
		window = q.WindowStart
	}
	if counted(f, by) {
		return s.countedGroups(ctx, q, by, col, window)
	}
	var page []string // nil: every group
	if q.Limit > 0 || q.Offset > 0 || q.After != nil {
		var err error
		if page, err = s.filteredPage(ctx, f, col, q); err != nil || len(page) == 0 {
			return []dlqops.Group{}, err
		}
	}
	byKey, keys, err := s.aggregateGroups(ctx, f, by, col, window, page)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return []dlqops.Group{}, nil
	}
	if err := s.sampleGroups(ctx, f, col, byKey, keys); err != nil {
		return nil, err
	}
	if page != nil {
		return pageOf(byKey, page), nil
	}
	return dlqops.PageGroups(pageOf(byKey, keys), q), nil
}

// pageOf returns the groups of keys in that order, with their topics and
// handlers sorted; a key without a group (pruned between two statements)
// is left out.
func pageOf(byKey map[string]*groupAcc, keys []string) []dlqops.Group {
	out := make([]dlqops.Group, 0, len(keys))
	for _, k := range keys {
		if a := byKey[k]; a != nil {
			a.g.Topics = slices.Sorted(maps.Keys(a.topics))
			a.g.Handlers = slices.Sorted(maps.Keys(a.handlers))
			out = append(out, a.g)
		}
	}
	return out
}

// orderSQL is the ORDER BY of an order over an aggregate of letters by
// key (col), ties bytewise as Go compares keys.
func orderSQL(o dlqops.GroupOrder, col string) string {
	if o == dlqops.GroupsByNewest {
		return `max(d.failed_at) DESC, d.` + col + ` COLLATE "C"`
	}
	return `count(*) DESC, d.` + col + ` COLLATE "C"`
}

// limitArg is q.Limit as a LIMIT argument: NULL (no limit) for 0.
func limitArg(q dlqops.GroupQuery) any {
	if q.Limit == 0 {
		return nil
	}
	return q.Limit
}

// filteredPage returns the keys of the groups of the page q asks for
// (after q.After, which HAVING selects), in order, over the letters
// matching f: O(matching letters) in the
// server, O(page) here.
func (s *Store) filteredPage(ctx context.Context, f dlqops.Filter, col string, q dlqops.GroupQuery) ([]string, error) {
	args := []any{limitArg(q), q.Offset}
	cond := where(f, "d.", &args)
	having := ""
	if c := q.After; c != nil {
		agg := `count(*)`
		args = append(args, c.Count, text(c.Key))
		if q.Order == dlqops.GroupsByNewest {
			agg = `max(d.failed_at)`
			args[len(args)-2] = c.LastSeen
		}
		n := len(args)
		having = fmt.Sprintf(` HAVING %[1]s < $%[2]d OR %[1]s = $%[2]d AND d.%[3]s COLLATE "C" > $%[4]d`, agg, n-1, col, n)
	}
	return s.groupKeys(ctx, `SELECT d.`+col+` FROM `+s.table+` d WHERE `+cond+`
		GROUP BY 1`+having+` ORDER BY `+orderSQL(q.Order, col)+` LIMIT $1 OFFSET $2`, args...)
}

// CountGroups implements dlqops.GroupCounter. Without a filter, or with
// one naming a group, it counts the totals of migration 0006 (an
// index-only scan of one row per group); other filters count the distinct
// keys of the matching letters.
func (s *Store) CountGroups(ctx context.Context, q dlqops.GroupQuery) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := q.Validate(); err != nil {
		return 0, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	f := q.Filter
	f.Limit = 0
	var n int
	var err error
	if counted(f, by) {
		err = s.pool.QueryRow(ctx, `SELECT count(*) FROM `+s.schema+`.group_totals WHERE dim = $1 AND ($2 = '' OR key = $2)`,
			dimOf(by), text(countedKey(f, by))).Scan(&n)
	} else {
		col := groupColumn(by)
		var args []any
		err = s.pool.QueryRow(ctx, `SELECT count(DISTINCT d.`+col+`) FROM `+s.table+` d WHERE `+where(f, "d.", &args), args...).Scan(&n)
	}
	if err != nil {
		return 0, storeErr("count groups", err)
	}
	return n, nil
}

// groupAcc folds the aggregate rows of one group.
type groupAcc struct {
	g                dlqops.Group
	topics, handlers map[string]bool
}

// aggregateGroups runs the hash aggregate (of the groups of page, when
// not nil) and folds its rows into one groupAcc per key; keys are in
// first-seen order.
func (s *Store) aggregateGroups(ctx context.Context, f dlqops.Filter, by dlqops.GroupBy, col string, window any, page []string) (map[string]*groupAcc, []string, error) {
	args := []any{window}
	cond := where(f, "d.", &args)
	if page != nil {
		args = append(args, page)
		cond += ` AND d.` + col + ` = ANY($` + strconv.Itoa(len(args)) + `::text[])`
	}
	sql := `SELECT d.` + col + `, d.original_topic, d.handler, ` + groupAggregates + `
		FROM ` + s.table + ` d WHERE ` + cond + `
		GROUP BY 1, 2, 3`
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, storeErr("groups", err)
	}
	defer rows.Close()
	byKey := map[string]*groupAcc{}
	var keys []string
	for rows.Next() {
		var (
			key, topic, handler          string
			cnt, nNew, nRep, nArch, nWin int64
			first, last                  time.Time
			oldest                       *time.Time
		)
		if err := rows.Scan(&key, &topic, &handler, &cnt, &nNew, &nRep, &nArch, &nWin, &first, &last, &oldest); err != nil {
			return nil, nil, storeErr("groups", err)
		}
		a := byKey[key]
		if a == nil {
			a = &groupAcc{g: dlqops.Group{Key: key, By: by, FirstSeen: first.UTC(), LastSeen: last.UTC()},
				topics: map[string]bool{}, handlers: map[string]bool{}}
			byKey[key] = a
			keys = append(keys, key)
		}
		g := &a.g
		g.Count += int(cnt)
		g.New += int(nNew)
		g.Replayed += int(nRep)
		g.Archived += int(nArch)
		g.InWindow += int(nWin)
		if first.Before(g.FirstSeen) {
			g.FirstSeen = first.UTC()
		}
		if last.After(g.LastSeen) {
			g.LastSeen = last.UTC()
		}
		if oldest != nil && (g.OldestNew.IsZero() || oldest.Before(g.OldestNew)) {
			g.OldestNew = oldest.UTC()
		}
		a.topics[topic] = true
		a.handlers[handler] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, storeErr("groups", err)
	}
	return byKey, keys, nil
}

// sampleGroups runs the second statement: the newest letter of each group
// gives its sample error and class.
func (s *Store) sampleGroups(ctx context.Context, f dlqops.Filter, col string, byKey map[string]*groupAcc, keys []string) error {
	args := []any{keys}
	sql := `SELECT k.key, coalesce(smp.error, ''), coalesce(smp.error_class, '')
		FROM unnest($1::text[]) AS k(key) LEFT JOIN LATERAL (
			SELECT x.error, x.error_class FROM ` + s.table + ` x
			WHERE x.` + col + ` = k.key AND ` + where(f, "x.", &args) + `
			ORDER BY x.failed_at DESC, x.id DESC LIMIT 1) smp ON TRUE`
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return storeErr("group samples", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, sample, class string
		if err := rows.Scan(&key, &sample, &class); err != nil {
			return storeErr("group samples", err)
		}
		if a := byKey[key]; a != nil {
			a.g.SampleError, a.g.ErrorClass = sample, class
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return storeErr("group samples", err)
	}
	return nil
}

// groupAggregates are the columns a group's counts and times are read
// from, over letters d ($1: the window start), in the order Group's
// fields are scanned: count, new, replayed, archived, in the window,
// first and last failure, oldest new failure.
const groupAggregates = `count(*),
	count(*) FILTER (WHERE d.status = 'new'),
	count(*) FILTER (WHERE d.status = 'replayed'),
	count(*) FILTER (WHERE d.status = 'archived'),
	count(*) FILTER (WHERE d.failed_at >= $1::timestamptz),
	min(d.failed_at), max(d.failed_at),
	min(d.failed_at) FILTER (WHERE d.status = 'new')`

// groupKeys runs a query of group keys (a page of an order) and collects
// them.
func (s *Store) groupKeys(ctx context.Context, sql string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, storeErr("group page", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, storeErr("group page", err)
	}
	return keys, nil
}
