package redisstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// groupDim maps a grouping to its index dimension.
func groupDim(by dlqops.GroupBy) string {
	switch by {
	case dlqops.GroupByTopic:
		return "t"
	case dlqops.GroupByHandler:
		return "h"
	}
	return "f"
}

// Groups implements dlqops.Store. Without a filter (or with one that only
// names groups of the same grouping) one script takes the page from the
// order set of q.Order (after q.After: its rank, from a binary search of
// the cursor in the set) and reads each of its groups' indexes and
// counters, O(log G + page × log n); any other filter walks the smallest
// matching index and folds the letters, O(matching letters), and this
// process holds every group they make until it cuts the page.
func (s *Store) Groups(ctx context.Context, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	f := q.Filter
	f.Limit = 0
	keys, indexed := indexedGroups(f, by)
	if !indexed {
		out, err := s.groupsFiltered(ctx, by, f, q)
		if err != nil {
			return nil, storeErr("groups", err)
		}
		return out, nil
	}
	if len(keys) > 0 {
		// one named group: the page of a list of at most one
		if q.Offset > 0 {
			return []dlqops.Group{}, nil
		}
		out, err := s.groupsIndexed(ctx, by, keys, dlqops.GroupQuery{WindowStart: q.WindowStart})
		if err != nil {
			return nil, storeErr("groups", err)
		}
		return dlqops.PageGroups(out, q), nil
	}
	if q.After != nil {
		rank, err := s.rankAfter(ctx, by, q)
		if err != nil {
			return nil, storeErr("groups", err)
		}
		q.Offset += rank
	}
	out, err := s.groupsIndexed(ctx, by, keys, q)
	if err != nil {
		return nil, storeErr("groups", err)
	}
	return out, nil
}

// rankAfter returns the rank in q.Order's order set of the first group
// after q.After: O(log G) however deep, as ranks are in a sorted set.
func (s *Store) rankAfter(ctx context.Context, by dlqops.GroupBy, q dlqops.GroupQuery) (int, error) {
	ord, score := "c", -int64(q.After.Count)
	if q.Order == dlqops.GroupsByNewest {
		ord, score = "l", -micros(q.After.LastSeen)
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	n, err := rankScript.Run(ctx, s.client, nil, s.kp, groupDim(by), ord, score, q.After.Key).Int()
	if err != nil {
		return 0, err
	}
	return n, nil
}

// CountGroups implements dlqops.GroupCounter: without a filter SCARD,
// O(1); with one naming a group, whether it exists; other filters walk
// the letters as Groups does.
func (s *Store) CountGroups(ctx context.Context, q dlqops.GroupQuery) (int, error) {
	if err := q.Validate(); err != nil {
		return 0, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	f := q.Filter
	f.Limit = 0
	keys, indexed := indexedGroups(f, by)
	if !indexed {
		out, err := s.slimGroups(ctx, by, f)
		if err != nil {
			return 0, storeErr("count groups", err)
		}
		return len(out), nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int64
	var err error
	if len(keys) > 0 {
		n, err = s.client.Exists(ctx, s.kp+"g:"+groupDim(by)+":"+keys[0]).Result()
	} else {
		n, err = s.client.SCard(ctx, s.kp+"k:"+groupDim(by)).Result()
	}
	if err != nil {
		return 0, storeErr("count groups", err)
	}
	return int(n), nil
}

// indexedGroups reports whether the per-group counters answer f, and which
// groups to read (none: all).
func indexedGroups(f dlqops.Filter, by dlqops.GroupBy) ([]string, bool) {
	if len(f.IDs) > 0 || f.DLQTopic != "" || len(f.Statuses) > 0 || !f.Since.IsZero() || !f.Until.IsZero() {
		return nil, false
	}
	sel := map[dlqops.GroupBy]string{dlqops.GroupByFingerprint: f.Group, dlqops.GroupByTopic: f.Topic, dlqops.GroupByHandler: f.Handler}
	for b, v := range sel {
		if b != by && v != "" {
			return nil, false
		}
	}
	if v := sel[by]; v != "" {
		return []string{v}, true
	}
	return nil, true
}

// groupsIndexed reads the groups keys names, or the page q asks for of
// the order set (keys empty).
func (s *Store) groupsIndexed(ctx context.Context, by dlqops.GroupBy, keys []string, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	win, ord := indexArgs(q)
	args := []any{s.kp, groupDim(by), win, ord, q.Offset, q.Limit}
	for _, k := range keys {
		args = append(args, k)
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	v, err := groupsScript.Run(ctx, s.client, nil, args...).Slice()
	if err != nil {
		return nil, err
	}
	out := make([]dlqops.Group, 0, len(v))
	for _, it := range v {
		row, ok := it.([]any)
		if !ok || len(row) != 8 {
			return nil, fmt.Errorf("unexpected group reply %v", it)
		}
		key, _ := row[0].(string)
		counters, _ := row[1].([]any)
		g := dlqops.Group{Key: key, By: by, Topics: []string{}, Handlers: []string{}}
		for i := 0; i+1 < len(counters); i += 2 {
			name, _ := counters[i].(string)
			val, _ := counters[i+1].(string)
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("group %q counter %s: %w", key, name, err)
			}
			switch {
			case name == "c":
				g.Count = n
			case name == "s:new":
				g.New = n
			case name == "s:replayed":
				g.Replayed = n
			case name == "s:archived":
				g.Archived = n
			case strings.HasPrefix(name, "t:"):
				g.Topics = append(g.Topics, name[2:])
			case strings.HasPrefix(name, "h:"):
				g.Handlers = append(g.Handlers, name[2:])
			}
		}
		slices.Sort(g.Topics)
		slices.Sort(g.Handlers)
		var perr error
		score := func(x any) time.Time {
			str, _ := x.(string)
			if str == "" || perr != nil {
				return time.Time{}
			}
			t, err := parseScore(str)
			perr = err
			return t
		}
		g.FirstSeen, g.LastSeen, g.OldestNew = score(row[2]), score(row[3]), score(row[4])
		if perr != nil {
			return nil, perr
		}
		inWin, _ := row[5].(int64)
		g.InWindow = int(inWin)
		g.SampleError, _ = row[6].(string)
		g.ErrorClass, _ = row[7].(string)
		out = append(out, g)
	}
	return out, nil
}

func (s *Store) groupsScanned(ctx context.Context, by dlqops.GroupBy, f dlqops.Filter, window time.Time) ([]dlqops.Group, error) {
	type acc struct {
		g                dlqops.Group
		topics, handlers map[string]bool
	}
	groups := map[string]*acc{}
	win := ""
	if !window.IsZero() {
		win = strconv.FormatInt(ceilMicros(window), 10)
	}
	// each script step folds up to scanBudget letters into partial groups;
	// steps come in replay order, so a later step's last letter is newer
	_, err := s.walk(ctx, scan{mode: "agg", f: f, extra: [3]any{groupDim(by), win, ""}}, func(item any) error {
		part, lists, err := aggRow(item, by)
		if err != nil {
			return err
		}
		a := groups[part.Key]
		if a == nil {
			a = &acc{g: dlqops.Group{Key: part.Key, By: by, FirstSeen: part.FirstSeen}, topics: map[string]bool{}, handlers: map[string]bool{}}
			groups[part.Key] = a
		}
		g := &a.g
		g.Count += part.Count
		g.New += part.New
		g.Replayed += part.Replayed
		g.Archived += part.Archived
		g.InWindow += part.InWindow
		if g.OldestNew.IsZero() {
			g.OldestNew = part.OldestNew
		}
		g.LastSeen = part.LastSeen
		g.SampleError, g.ErrorClass = part.SampleError, part.ErrorClass
		for i, set := range []map[string]bool{a.topics, a.handlers} {
			for _, x := range lists[i] {
				v, _ := x.(string)
				set[v] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]dlqops.Group, 0, len(groups))
	for _, a := range groups {
		a.g.Topics = slices.Sorted(maps.Keys(a.topics))
		a.g.Handlers = slices.Sorted(maps.Keys(a.handlers))
		out = append(out, a.g)
	}
	return out, nil
}

// aggRow parses a row of the walk's agg mode: the part of a group one
// script step folded, and its topics and handlers. Steps come in replay
// order, so a later step's part is newer.
func aggRow(item any, by dlqops.GroupBy) (dlqops.Group, [2][]any, error) {
	var lists [2][]any
	row, ok := item.([]any)
	if !ok || len(row) != 13 {
		return dlqops.Group{}, lists, fmt.Errorf("unexpected scan reply %v", item)
	}
	key, _ := row[0].(string)
	var n [5]int
	for i := range n {
		v, _ := row[1+i].(int64)
		n[i] = int(v)
	}
	var ts [3]time.Time
	for i := range ts {
		str, _ := row[6+i].(string)
		if str == "" {
			continue
		}
		at, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return dlqops.Group{}, lists, fmt.Errorf("group %q: failed at: %w", key, err)
		}
		ts[i] = fromMicros(at)
	}
	g := dlqops.Group{Key: key, By: by, Count: n[0], New: n[1], Replayed: n[2], Archived: n[3], InWindow: n[4],
		FirstSeen: ts[0], LastSeen: ts[1], OldestNew: ts[2]}
	g.SampleError, _ = row[9].(string)
	g.ErrorClass, _ = row[10].(string)
	lists[0], _ = row[11].([]any)
	lists[1], _ = row[12].([]any)
	return g, lists, nil
}

// groupsFiltered answers Groups for a filter the counters cannot: every
// group folded when q asks for all; else a walk of the letters f selects
// that folds each group's count and newest failure only (O(G) small
// entries here), which orders and cuts the page, then one walk per group
// of the page of its letters f selects, from its own index (a group
// keyed "" has none: its walk is the first one's, folded whole).
func (s *Store) groupsFiltered(ctx context.Context, by dlqops.GroupBy, f dlqops.Filter, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	if q.Limit == 0 && q.Offset == 0 && q.After == nil {
		out, err := s.groupsScanned(ctx, by, f, q.WindowStart)
		return dlqops.PageGroups(out, q), err
	}
	slim, err := s.slimGroups(ctx, by, f)
	if err != nil {
		return nil, err
	}
	page := dlqops.PageGroups(slim, q)
	out := make([]dlqops.Group, 0, len(page))
	for _, p := range page {
		gf := f
		switch by {
		case dlqops.GroupByTopic:
			gf.Topic = p.Key
		case dlqops.GroupByHandler:
			gf.Handler = p.Key
		default:
			gf.Group = p.Key
		}
		gs, err := s.groupsScanned(ctx, by, gf, q.WindowStart)
		if err != nil {
			return nil, err
		}
		for _, g := range gs { // none when the group went between the walks
			if g.Key == p.Key {
				out = append(out, g)
			}
		}
	}
	return out, nil
}

// slimGroups walks the letters f selects and returns their groups with
// their Key, Count and LastSeen only.
func (s *Store) slimGroups(ctx context.Context, by dlqops.GroupBy, f dlqops.Filter) ([]dlqops.Group, error) {
	type slim struct {
		n    int
		last int64
	}
	groups := map[string]*slim{}
	_, err := s.walk(ctx, scan{mode: "agg", f: f, extra: [3]any{groupDim(by), "", "#"}}, func(item any) error {
		row, ok := item.([]any)
		if !ok || len(row) != 3 {
			return fmt.Errorf("unexpected scan reply %v", item)
		}
		key, _ := row[0].(string)
		n, _ := row[1].(int64)
		str, _ := row[2].(string)
		last, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return fmt.Errorf("group %q: failed at: %w", key, err)
		}
		g := groups[key]
		if g == nil {
			g = &slim{}
			groups[key] = g
		}
		g.n += int(n)
		g.last = max(g.last, last)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]dlqops.Group, 0, len(groups))
	for k, g := range groups {
		out = append(out, dlqops.Group{Key: k, By: by, Count: g.n, LastSeen: fromMicros(g.last)})
	}
	return out, nil
}

// indexArgs are a query's window start (Unix microseconds, "" for none)
// and order ("c" by count, "l" by newest failure) as the order-set scripts
// take them.
func indexArgs(q dlqops.GroupQuery) (win, ord string) {
	if !q.WindowStart.IsZero() {
		win = strconv.FormatInt(ceilMicros(q.WindowStart), 10)
	}
	ord = "c"
	if q.Order == dlqops.GroupsByNewest {
		ord = "l"
	}
	return win, ord
}
