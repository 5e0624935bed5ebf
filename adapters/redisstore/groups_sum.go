package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// sumChunk is how many groups one script of SumGroups sums, bounding how
// long it holds the server.
const sumChunk = 1000

// SumGroups implements dlqops.GroupSummer. Every group (no Offset) of
// the letters of a time range, or of all, is summed from the indexes of
// all letters and of each status in one script, O(log n). Past an
// Offset, without a filter, scripts of
// sumChunk groups each sum the counters and probe the indexes of the
// groups of the order set past q.Offset in the server, O(G log n) there
// and a row per chunk here. With a filter naming one group of the grouping
// it sums that group. Other filters walk the matching letters as Groups
// does, O(matching letters); without an Offset each step's partial
// groups are summed as they come (O(step) here), with one every group is
// folded first to learn which to skip.
func (s *Store) SumGroups(ctx context.Context, q dlqops.GroupQuery) (dlqops.Group, error) {
	if err := q.ValidateSum(); err != nil {
		return dlqops.Group{}, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	sum := dlqops.Group{By: by}
	f := q.Filter
	f.Limit = 0
	keys, indexed := indexedGroups(f, by)
	var gs []dlqops.Group
	var err error
	switch {
	case q.Offset == 0 && timeOnly(f):
		sum, err = s.sumTotals(ctx, by, f, q.WindowStart)
	case indexed && len(keys) > 0:
		if q.Offset > 0 {
			return sum, nil
		}
		q.Limit = 0
		gs, err = s.groupsIndexed(ctx, by, keys, q)
	case indexed:
		sum, err = s.sumIndexed(ctx, by, q)
	case q.Offset == 0:
		err = s.walkSum(ctx, by, f, q.WindowStart, &sum)
	default:
		if gs, err = s.groupsScanned(ctx, by, f, q.WindowStart); err == nil {
			q.Limit = 0
			gs = dlqops.PageGroups(gs, q)
		}
	}
	if err != nil {
		return dlqops.Group{}, storeErr("sum groups", err)
	}
	if gs != nil {
		sum = dlqops.SumGroups(gs, "", by)
	}
	return sum, nil
}

// timeOnly reports whether f selects by failure time only, or not at all.
func timeOnly(f dlqops.Filter) bool {
	return len(f.IDs) == 0 && f.Group == "" && f.Topic == "" && f.Handler == "" && f.DLQTopic == "" && len(f.Statuses) == 0
}

// sumTotals sums the letters of f's time range.
func (s *Store) sumTotals(ctx context.Context, by dlqops.GroupBy, f dlqops.Filter, window time.Time) (dlqops.Group, error) {
	lo, hi, win := "-inf", "+inf", ""
	if !f.Since.IsZero() {
		lo = strconv.FormatInt(ceilMicros(f.Since), 10)
	}
	if !f.Until.IsZero() {
		hi = "(" + strconv.FormatInt(ceilMicros(f.Until), 10)
	}
	if !window.IsZero() {
		win = strconv.FormatInt(ceilMicros(window), 10)
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	v, err := totalsScript.Run(ctx, s.client, nil, s.kp, lo, hi, win).Slice()
	if err != nil {
		return dlqops.Group{}, err
	}
	_, sum, err := sumRow(v)
	sum.By = by
	return sum, err
}

// sumIndexed sums the groups of the order set of q.Order past q.Offset,
// sumChunk at a time.
func (s *Store) sumIndexed(ctx context.Context, by dlqops.GroupBy, q dlqops.GroupQuery) (dlqops.Group, error) {
	win, ord := indexArgs(q)
	var parts []dlqops.Group
	for off := q.Offset; ; off += sumChunk {
		rctx, cancel := s.deadline(ctx)
		v, err := sumScript.Run(rctx, s.client, nil, s.kp, groupDim(by), win, ord, off, sumChunk).Slice()
		cancel()
		if err != nil {
			return dlqops.Group{}, err
		}
		read, part, err := sumRow(v)
		if err != nil {
			return dlqops.Group{}, err
		}
		parts = append(parts, part)
		if read < sumChunk {
			return dlqops.SumGroups(parts, "", by), nil
		}
	}
}

// sumRow parses sumScript's reply.
func sumRow(v []any) (int, dlqops.Group, error) {
	var g dlqops.Group
	if len(v) != 9 {
		return 0, g, fmt.Errorf("unexpected sum reply %v", v)
	}
	var n [6]int
	for i := range n {
		x, ok := v[i].(int64)
		if !ok {
			return 0, g, fmt.Errorf("unexpected sum reply %v", v)
		}
		n[i] = int(x)
	}
	g.Count, g.New, g.Replayed, g.Archived, g.InWindow = n[1], n[2], n[3], n[4], n[5]
	for i, dst := range []*time.Time{&g.FirstSeen, &g.LastSeen, &g.OldestNew} {
		str, _ := v[6+i].(string)
		if str == "" {
			continue
		}
		t, err := parseScore(str)
		if err != nil {
			return 0, g, err
		}
		*dst = t
	}
	return n[0], g, nil
}

// walkSum adds every letter f selects to sum, a step's partial groups at a
// time.
func (s *Store) walkSum(ctx context.Context, by dlqops.GroupBy, f dlqops.Filter, window time.Time, sum *dlqops.Group) error {
	win := ""
	if !window.IsZero() {
		win = strconv.FormatInt(ceilMicros(window), 10)
	}
	pair := make([]dlqops.Group, 2)
	_, err := s.walk(ctx, scan{mode: "agg", f: f, extra: [3]any{groupDim(by), win, ""}}, func(item any) error {
		part, _, err := aggRow(item, by)
		if err != nil {
			return err
		}
		pair[0], pair[1] = *sum, part
		*sum = dlqops.SumGroups(pair, "", by)
		return nil
	})
	return err
}
