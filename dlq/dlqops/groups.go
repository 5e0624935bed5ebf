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
	// Offset skips this many groups of the order (the earlier pages), or
	// of the groups after After.
	Offset int
	// After, when set, selects only the groups after this position in
	// Order: CursorOf the last group of the previous page. A store seeks
	// to it in the order's index (PostgreSQL, Redis), so a page costs the
	// same at any depth, where an Offset walks the groups before it.
	After *GroupCursor
}

// GroupCursor is a position in a group order: a group's Count (for
// GroupsByCount) or LastSeen (for GroupsByNewest), and its Key, which
// breaks ties bytewise. The group need not exist any more.
type GroupCursor struct {
	Count    int
	LastSeen time.Time
	Key      string
}

// CursorOf returns the position of g, for the GroupQuery.After of the
// page that follows it.
func CursorOf(g Group) *GroupCursor {
	return &GroupCursor{Count: g.Count, LastSeen: g.LastSeen, Key: g.Key}
}

// follows reports whether g comes after c in order o.
func (c *GroupCursor) follows(g *Group, o GroupOrder) bool {
	if o == GroupsByNewest {
		if !g.LastSeen.Equal(c.LastSeen) {
			return g.LastSeen.Before(c.LastSeen)
		}
	} else if g.Count != c.Count {
		return g.Count < c.Count
	}
	return g.Key > c.Key
}

// Validate checks the query: a known grouping and order, Limit, Offset
// and the After count not negative, a valid filter. Errors wrap ErrInvalidQuery.
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
	if q.After != nil && q.After.Count < 0 {
		return fmt.Errorf("%w: negative group cursor count %d", ErrInvalidQuery, q.After.Count)
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
// q.After, q.Offset and q.Limit select: what a Store that has to read
// every group anyway returns from Groups. It reuses gs.
func PageGroups(gs []Group, q GroupQuery) []Group {
	SortGroupsBy(gs, q.Order)
	if c := q.After; c != nil {
		gs = gs[sort.Search(len(gs), func(i int) bool { return c.follows(&gs[i], q.Order) }):]
	}
	gs = gs[min(q.Offset, len(gs)):]
	if q.Limit > 0 && len(gs) > q.Limit {
		gs = gs[:q.Limit]
	}
	return gs
}

// GroupSummer is implemented by a Store that sums groups without reading
// them (the memory, Redis and PostgreSQL stores do). GroupGauges sums the
// groups past its largest into OtherGroup with it, and PreviewPrune counts
// the letters a prune would take; without it both read every group.
type GroupSummer interface {
	// SumGroups returns the groups q selects after the first q.Offset of
	// q.Order (q.Limit is ignored; q.After is an invalid query) summed
	// into one Group, as SumGroups
	// sums them: Key "", q.By, the counts and InWindow added, the oldest
	// FirstSeen and OldestNew, the newest LastSeen; no topics, handlers or
	// sample. No group past the offset gives a Group with Count 0.
	SumGroups(ctx context.Context, q GroupQuery) (Group, error)
}

// ValidateSum checks a query of GroupSummer.SumGroups: Validate's checks,
// and no After. Errors wrap ErrInvalidQuery.
func (q GroupQuery) ValidateSum() error {
	if q.After != nil {
		return fmt.Errorf("%w: a sum of groups takes an offset, not a cursor", ErrInvalidQuery)
	}
	return q.Validate()
}

// SumGroups sums gs into one Group keyed key, as GroupSummer.SumGroups
// does: the counts and InWindow added, the oldest FirstSeen and OldestNew
// (zero ones left out), the newest LastSeen.
func SumGroups(gs []Group, key string, by GroupBy) Group {
	sum := Group{Key: key, By: by}
	for i := range gs {
		addGroup(&sum, &gs[i])
	}
	return sum
}

// addGroup adds g to sum as SumGroups does.
func addGroup(sum *Group, g *Group) {
	sum.Count += g.Count
	sum.New += g.New
	sum.Replayed += g.Replayed
	sum.Archived += g.Archived
	sum.InWindow += g.InWindow
	sum.FirstSeen = earliest(sum.FirstSeen, g.FirstSeen)
	sum.OldestNew = earliest(sum.OldestNew, g.OldestNew)
	if g.LastSeen.After(sum.LastSeen) {
		sum.LastSeen = g.LastSeen
	}
}

// earliest returns the earlier of a and b, a zero one counting as unset.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}
