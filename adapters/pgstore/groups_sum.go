package pgstore

import (
	"context"
	"strconv"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// SumGroups implements dlqops.GroupSummer: the keys of the first q.Offset
// groups (from the totals' index without a filter, as Groups pages them),
// then one statement read as one row. Without a filter it sums the
// counters outside those groups (sumCounted): O(G) counter rows; with a
// filter naming one group it sums that group; with another filter it
// aggregates the matching letters outside those groups: O(matching
// letters) in the server. O(offset) here.
func (s *Store) SumGroups(ctx context.Context, q dlqops.GroupQuery) (dlqops.Group, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := q.ValidateSum(); err != nil {
		return dlqops.Group{}, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	sum := dlqops.Group{By: by}
	f := q.Filter
	f.Limit = 0
	col := groupColumn(by)
	var skip []string
	if q.Offset > 0 {
		var err error
		if skip, err = s.firstKeys(ctx, q, f, by, col); err != nil {
			return sum, err
		}
	}
	var window any
	if !q.WindowStart.IsZero() {
		window = q.WindowStart
	}
	if counted(f, by) {
		if key := countedKey(f, by); key != "" {
			// one group at most: its counters, as Groups reads them
			if q.Offset > 0 {
				return sum, nil
			}
			q.Limit = 0
			gs, err := s.Groups(ctx, q)
			if err != nil {
				return sum, err
			}
			return dlqops.SumGroups(gs, "", by), nil
		}
		return s.sumCounted(ctx, by, col, window, skip)
	}
	args := []any{window}
	cond := where(f, "d.", &args)
	if len(skip) > 0 {
		args = append(args, skip)
		cond += ` AND NOT d.` + col + ` = ANY($` + strconv.Itoa(len(args)) + `::text[])`
	}
	var (
		cnt, nNew, nRep, nArch, nWin int64
		first, last, oldest          *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT `+groupAggregates+`
		FROM `+s.table+` d WHERE `+cond, args...).Scan(&cnt, &nNew, &nRep, &nArch, &nWin, &first, &last, &oldest)
	if err != nil {
		return sum, storeErr("sum groups", err)
	}
	sum.Count, sum.New, sum.Replayed, sum.Archived, sum.InWindow = int(cnt), int(nNew), int(nRep), int(nArch), int(nWin)
	setTimes(&sum, first, last, oldest)
	return sum, nil
}

// sumCounted sums every group but those of skip without a filter, in one
// statement: the counts from the counters of migration 0005, the newest
// failure from the totals of 0006, the oldest letter and oldest new
// letter from the first entry of the failed_at indexes outside skip's
// groups, the window from the failed_at index. O(G) counter rows and
// O(window) index entries; the oldest letters cost the index entries of
// skip's groups that come before the first of another group.
func (s *Store) sumCounted(ctx context.Context, by dlqops.GroupBy, col string, window any, skip []string) (dlqops.Group, error) {
	sum := dlqops.Group{By: by}
	if skip == nil {
		skip = []string{}
	}
	t, sc := s.table, s.schema
	var (
		cnt, nNew, nRep, nArch, nWin int64
		first, last, oldest          *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT c.*, g.last, o.first, o.oldest, o.win FROM (
			SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE status = 'new'), 0),
				coalesce(sum(n) FILTER (WHERE status = 'replayed'), 0), coalesce(sum(n) FILTER (WHERE status = 'archived'), 0)
			FROM `+sc+`.group_counts WHERE dim = $1 AND NOT key = ANY($2::text[])) c,
		(SELECT max(last) AS last FROM `+sc+`.group_totals WHERE dim = $1 AND NOT key = ANY($2::text[])) g,
		(SELECT
			(SELECT x.failed_at FROM `+t+` x WHERE NOT x.`+col+` = ANY($2::text[]) ORDER BY x.failed_at LIMIT 1) AS first,
			(SELECT x.failed_at FROM `+t+` x WHERE x.status = 'new' AND NOT x.`+col+` = ANY($2::text[])
				ORDER BY x.failed_at LIMIT 1) AS oldest,
			CASE WHEN $3::timestamptz IS NULL THEN 0 ELSE (SELECT count(*) FROM `+t+` x
				WHERE x.failed_at >= $3::timestamptz AND NOT x.`+col+` = ANY($2::text[])) END AS win) o`,
		dimOf(by), skip, window).Scan(&cnt, &nNew, &nRep, &nArch, &last, &first, &oldest, &nWin)
	if err != nil {
		return sum, storeErr("sum groups", err)
	}
	sum.Count, sum.New, sum.Replayed, sum.Archived, sum.InWindow = int(cnt), int(nNew), int(nRep), int(nArch), int(nWin)
	setTimes(&sum, first, last, oldest)
	return sum, nil
}

// setTimes sets g's times from nullable columns.
func setTimes(g *dlqops.Group, first, last, oldest *time.Time) {
	for _, t := range []struct {
		dst *time.Time
		src *time.Time
	}{{&g.FirstSeen, first}, {&g.LastSeen, last}, {&g.OldestNew, oldest}} {
		if t.src != nil {
			*t.dst = t.src.UTC()
		}
	}
}

// firstKeys returns the keys of the first q.Offset groups of q.Order, as
// Groups orders them.
func (s *Store) firstKeys(ctx context.Context, q dlqops.GroupQuery, f dlqops.Filter, by dlqops.GroupBy, col string) ([]string, error) {
	if !counted(f, by) {
		return s.filteredPage(ctx, f, col, dlqops.GroupQuery{Order: q.Order, Limit: q.Offset})
	}
	if key := text(countedKey(f, by)); key != "" {
		return []string{key}, nil // a list of at most one group
	}
	order := `n DESC, key`
	if q.Order == dlqops.GroupsByNewest {
		order = `last DESC, key`
	}
	return s.groupKeys(ctx, `SELECT key FROM `+s.schema+`.group_totals WHERE dim = $1
		ORDER BY `+order+` LIMIT $2`, dimOf(by), q.Offset)
}
