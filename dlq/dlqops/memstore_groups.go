package dlqops

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// Groups implements Store. It folds every matching letter into its
// group's counts (O(letters) time, O(groups) small structs), cuts the
// page, and collects the topics and handlers of the page's groups only.
func (s *MemStore) Groups(ctx context.Context, q GroupQuery) ([]Group, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	by, _ := ParseGroupBy(string(q.By))
	f := q.Filter
	f.Limit = 0
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	type acc struct {
		g      Group
		lastID string // of the newest letter, in replay order
	}
	groups := map[string]*acc{}
	ids := idSet(f.IDs)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.letters {
		dl := &e.dl
		if !matches(dl, f, ids) {
			continue
		}
		key := groupKey(dl, by)
		a := groups[key]
		if a == nil {
			a = &acc{g: Group{Key: key, By: by, FirstSeen: dl.FailedAt, LastSeen: dl.FailedAt,
				SampleError: dl.Error, ErrorClass: dl.ErrorClass}, lastID: dl.ID}
			groups[key] = a
		}
		g := &a.g
		g.Count++
		switch dl.Status {
		case StatusNew:
			g.New++
			if g.OldestNew.IsZero() || dl.FailedAt.Before(g.OldestNew) {
				g.OldestNew = dl.FailedAt
			}
		case StatusReplayed:
			g.Replayed++
		case StatusArchived:
			g.Archived++
		}
		if !q.WindowStart.IsZero() && !dl.FailedAt.Before(q.WindowStart) {
			g.InWindow++
		}
		if dl.FailedAt.Before(g.FirstSeen) {
			g.FirstSeen = dl.FailedAt
		}
		if letterLess(Record{FailedAt: g.LastSeen, ID: a.lastID}, *dl) {
			g.LastSeen, a.lastID, g.SampleError, g.ErrorClass = dl.FailedAt, dl.ID, dl.Error, dl.ErrorClass
		}
	}
	out := make([]Group, 0, len(groups))
	for _, a := range groups {
		out = append(out, a.g)
	}
	out = slices.Clip(PageGroups(out, q))
	type names struct{ topics, handlers map[string]bool }
	page := make(map[string]*names, len(out))
	for _, g := range out {
		page[g.Key] = &names{topics: map[string]bool{}, handlers: map[string]bool{}}
	}
	for _, e := range s.letters {
		if n := page[groupKey(&e.dl, by)]; n != nil && matches(&e.dl, f, ids) {
			n.topics[e.dl.OriginalTopic] = true
			n.handlers[e.dl.Handler] = true
		}
	}
	for i := range out {
		n := page[out[i].Key]
		out[i].Topics = slices.Sorted(maps.Keys(n.topics))
		out[i].Handlers = slices.Sorted(maps.Keys(n.handlers))
	}
	return out, nil
}

// CountGroups implements GroupCounter: O(letters).
func (s *MemStore) CountGroups(ctx context.Context, q GroupQuery) (int, error) {
	if err := q.Validate(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStore, err)
	}
	by, _ := ParseGroupBy(string(q.By))
	f := q.Filter
	f.Limit = 0
	keys, ids := map[string]bool{}, idSet(f.IDs)
	s.mu.Lock()
	for _, e := range s.letters {
		if matches(&e.dl, f, ids) {
			keys[groupKey(&e.dl, by)] = true
		}
	}
	s.mu.Unlock()
	return len(keys), nil
}

func groupKey(dl *Record, by GroupBy) string {
	switch by {
	case GroupByTopic:
		return dl.OriginalTopic
	case GroupByHandler:
		return dl.Handler
	}
	return dl.Fingerprint
}

// SumGroups implements GroupSummer: it sums what Groups returns for q
// without a Limit, O(letters).
func (s *MemStore) SumGroups(ctx context.Context, q GroupQuery) (Group, error) {
	if err := q.ValidateSum(); err != nil {
		return Group{}, err
	}
	q.Limit = 0
	gs, err := s.Groups(ctx, q)
	if err != nil {
		return Group{}, err
	}
	by, _ := ParseGroupBy(string(q.By))
	return SumGroups(gs, "", by), nil
}
