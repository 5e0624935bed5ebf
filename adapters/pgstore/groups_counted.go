package pgstore

import (
	"context"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// counted reports whether Groups can read the counters of migration 0005:
// no filter, or one naming a group of the grouping asked for.
func counted(f dlqops.Filter, by dlqops.GroupBy) bool {
	if len(f.IDs) > 0 || f.DLQTopic != "" || len(f.Statuses) > 0 || !f.Since.IsZero() || !f.Until.IsZero() {
		return false
	}
	switch by {
	case dlqops.GroupByTopic:
		return f.Group == "" && f.Handler == ""
	case dlqops.GroupByHandler:
		return f.Group == "" && f.Topic == ""
	}
	return f.Topic == "" && f.Handler == ""
}

// dimOf is the dim column of group_counts for a grouping.
func dimOf(by dlqops.GroupBy) string {
	switch by {
	case dlqops.GroupByTopic:
		return "t"
	case dlqops.GroupByHandler:
		return "h"
	}
	return "f"
}

// countedKey is the group a counted query names ("" for none).
func countedKey(f dlqops.Filter, by dlqops.GroupBy) string {
	switch by {
	case dlqops.GroupByTopic:
		return f.Topic
	case dlqops.GroupByHandler:
		return f.Handler
	}
	return f.Group
}

// countedGroups answers Groups from the counters: the page's keys from the
// totals' index in q's order (all of them without a Limit), their counters,
// then one probe per group of its (key, failed_at) indexes for the first
// and last seen, the oldest new letter, the window count and the sample:
// O(page log n).
func (s *Store) countedGroups(ctx context.Context, q dlqops.GroupQuery, by dlqops.GroupBy, col string, window any) ([]dlqops.Group, error) {
	key := text(countedKey(q.Filter, by))
	var page []string // nil: every group (the totals give no order then)
	switch {
	case key != "" && q.Offset > 0:
		return []dlqops.Group{}, nil
	case key != "":
	case q.Limit > 0 || q.Offset > 0 || q.After != nil:
		var err error
		if page, err = s.totalsPage(ctx, q, by); err != nil || len(page) == 0 {
			return []dlqops.Group{}, err
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT key, topic, handler, status, n FROM `+s.schema+`.group_counts
		WHERE dim = $1 AND ($2 = '' OR key = $2) AND ($3::text[] IS NULL OR key = ANY($3::text[])) AND n > 0`, dimOf(by), key, page)
	if err != nil {
		return nil, storeErr("group counts", err)
	}
	defer rows.Close()
	byKey := map[string]*groupAcc{}
	var keys []string
	for rows.Next() {
		var (
			k, topic, handler, status string
			n                         int64
		)
		if err := rows.Scan(&k, &topic, &handler, &status, &n); err != nil {
			return nil, storeErr("group counts", err)
		}
		a := byKey[k]
		if a == nil {
			a = &groupAcc{g: dlqops.Group{Key: k, By: by}, topics: map[string]bool{}, handlers: map[string]bool{}}
			byKey[k] = a
			keys = append(keys, k)
		}
		a.g.Count += int(n)
		switch dlqops.Status(status) {
		case dlqops.StatusNew:
			a.g.New += int(n)
		case dlqops.StatusReplayed:
			a.g.Replayed += int(n)
		case dlqops.StatusArchived:
			a.g.Archived += int(n)
		}
		a.topics[topic], a.handlers[handler] = true, true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, storeErr("group counts", err)
	}
	if len(keys) == 0 {
		return []dlqops.Group{}, nil
	}
	if err := s.groupTimes(ctx, col, window, byKey, keys); err != nil {
		return nil, err
	}
	if page != nil {
		return pageOf(byKey, page), nil
	}
	return dlqops.PageGroups(pageOf(byKey, keys), q), nil
}

// totalsPage returns the keys of the page q asks for from the totals'
// index of q.Order. After a cursor it seeks in the index: the groups tied
// with the cursor and past its key, then those past the cursor's count or
// time, two ranges of the index read only as far as the page needs, so a
// page costs the same at any depth; an Offset walks the index to it.
func (s *Store) totalsPage(ctx context.Context, q dlqops.GroupQuery, by dlqops.GroupBy) ([]string, error) {
	col, order := `n`, `n DESC, key`
	var at any
	if c := q.After; c != nil {
		at = c.Count
	}
	if q.Order == dlqops.GroupsByNewest {
		col, order = `last`, `last DESC, key`
		if c := q.After; c != nil {
			at = c.LastSeen
		}
	}
	gt := s.schema + `.group_totals`
	sql := `SELECT key FROM ` + gt + ` WHERE dim = $1 ORDER BY ` + order + ` LIMIT $2 OFFSET $3`
	args := []any{dimOf(by), limitArg(q), q.Offset}
	if q.After != nil {
		var reach any // the rows of each range the page can need
		if q.Limit > 0 {
			reach = q.Limit + q.Offset
		}
		sql = `SELECT key FROM (
			(SELECT key, n, last FROM ` + gt + ` WHERE dim = $1 AND ` + col + ` = $4 AND key > $5 ORDER BY key LIMIT $6)
			UNION ALL
			(SELECT key, n, last FROM ` + gt + ` WHERE dim = $1 AND ` + col + ` < $4 ORDER BY ` + order + ` LIMIT $6)
		) p ORDER BY ` + order + ` LIMIT $2 OFFSET $3`
		args = append(args, at, text(q.After.Key), reach)
	}
	return s.groupKeys(ctx, sql, args...)
}

// groupTimes fills each group's times, window count and sample with index
// probes.
func (s *Store) groupTimes(ctx context.Context, col string, window any, byKey map[string]*groupAcc, keys []string) error {
	t := s.table
	rows, err := s.pool.Query(ctx, `SELECT k.key,
			(SELECT min(x.failed_at) FROM `+t+` x WHERE x.`+col+` = k.key),
			(SELECT min(x.failed_at) FROM `+t+` x WHERE x.`+col+` = k.key AND x.status = 'new'),
			CASE WHEN $2::timestamptz IS NULL THEN 0
				ELSE (SELECT count(*) FROM `+t+` x WHERE x.`+col+` = k.key AND x.failed_at >= $2::timestamptz) END,
			smp.failed_at, coalesce(smp.error, ''), coalesce(smp.error_class, '')
		FROM unnest($1::text[]) AS k(key) LEFT JOIN LATERAL (
			SELECT x.failed_at, x.error, x.error_class FROM `+t+` x WHERE x.`+col+` = k.key
			ORDER BY x.failed_at DESC, x.id DESC LIMIT 1) smp ON TRUE`, keys, window)
	if err != nil {
		return storeErr("group times", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k                   string
			first, oldest, last *time.Time
			win                 int64
			sample, class       string
		)
		if err := rows.Scan(&k, &first, &oldest, &win, &last, &sample, &class); err != nil {
			return storeErr("group times", err)
		}
		a := byKey[k]
		if a == nil {
			continue
		}
		if first != nil {
			a.g.FirstSeen = first.UTC()
		}
		if last != nil {
			a.g.LastSeen = last.UTC()
		}
		if oldest != nil {
			a.g.OldestNew = oldest.UTC()
		}
		a.g.InWindow, a.g.SampleError, a.g.ErrorClass = int(win), sample, class
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return storeErr("group times", err)
	}
	return nil
}
