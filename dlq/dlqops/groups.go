package dlqops

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// GroupOrder is the order of the groups Store.Groups returns.
type GroupOrder string

// Group orders. Ties are broken by Key, bytewise ascending, so a page
// boundary is the same on every store.
const (
	// GroupsByCount puts the largest Count first; the default.
	GroupsByCount GroupOrder = "count"
	// GroupsByNewest puts the newest LastSeen first.
	GroupsByNewest GroupOrder = "newest"
)

// ParseGroupOrder parses "count" (or "") or "newest"; it returns an error
// wrapping ErrInvalidQuery for anything else.
func ParseGroupOrder(s string) (GroupOrder, error) {
	switch GroupOrder(s) {
	case "", GroupsByCount:
		return GroupsByCount, nil
	case GroupsByNewest:
		return GroupsByNewest, nil
	}
	return "", fmt.Errorf("%w: unknown group order %q (want count or newest)", ErrInvalidQuery, s)
}

// GroupQuery asks for groups. The zero Order, Limit and Offset ask for
// every group, largest first, as before they existed.
type GroupQuery struct {
	// By is the grouping key; "" means GroupByFingerprint.
	By GroupBy
	// Filter restricts the letters grouped (Limit is ignored).
	Filter Filter
	// WindowStart starts the window counted in Group.InWindow; zero counts
	// nothing.
	WindowStart time.Time
	// Order orders the groups; "" means GroupsByCount.
	Order GroupOrder
	// Limit is the most groups returned; 0 means every group (after
	// Offset). Ask for one more than a page shows to learn whether there
	// is a next page.
	Limit int
	// Offset skips this many groups of the order (the earlier pages).
	Offset int
}

// Validate checks the query: a known grouping and order, Limit and Offset
// not negative, a valid filter. Errors wrap ErrInvalidQuery.
func (q GroupQuery) Validate() error {
	if _, err := ParseGroupBy(string(q.By)); err != nil {
		return err
	}
	if _, err := ParseGroupOrder(string(q.Order)); err != nil {
		return err
	}
	if q.Limit < 0 || q.Offset < 0 {
		return fmt.Errorf("%w: negative group limit %d or offset %d", ErrInvalidQuery, q.Limit, q.Offset)
	}
	f := q.Filter
	f.Limit = 0
	return f.Validate()
}

// GroupCounter is implemented by a Store that counts groups without
// reading them (the memory, Redis and PostgreSQL stores do). The console
// shows "groups 1 to 50 of N" with it, and "1 to 50, more follow" without.
type GroupCounter interface {
	// CountGroups returns how many groups q selects (q.Order, q.Limit and
	// q.Offset are ignored). Without a filter, or with one naming a group
	// of the grouping asked for, it costs O(1) in Redis and an index-only
	// count of the groups in PostgreSQL; other filters cost what Groups
	// costs.
	CountGroups(ctx context.Context, q GroupQuery) (int, error)
}

// SortGroups orders groups as Store.Groups returns them by default:
// largest Count first, then by Key.
func SortGroups(gs []Group) { SortGroupsBy(gs, GroupsByCount) }

// SortGroupsBy orders groups in order o (an unknown order sorts as
// GroupsByCount), ties by Key.
func SortGroupsBy(gs []Group, o GroupOrder) {
	sort.Slice(gs, func(i, j int) bool {
		a, b := &gs[i], &gs[j]
		if o == GroupsByNewest {
			if !a.LastSeen.Equal(b.LastSeen) {
				return a.LastSeen.After(b.LastSeen)
			}
		} else if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Key < b.Key
	})
}

// PageGroups sorts every group of a query in q.Order and returns the page
// q.Offset and q.Limit select: what a Store that has to read every group
// anyway returns from Groups. It reuses gs.
func PageGroups(gs []Group, q GroupQuery) []Group {
	SortGroupsBy(gs, q.Order)
	gs = gs[min(q.Offset, len(gs)):]
	if q.Limit > 0 && len(gs) > q.Limit {
		gs = gs[:q.Limit]
	}
	return gs
}
