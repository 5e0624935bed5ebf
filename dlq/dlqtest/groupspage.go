package dlqtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// groupsPageLetters are the letters of the GroupsPage subtest: group key,
// letter count and the minute of its newest letter (its older letters
// fail a minute apart before it). "Z" sorts before "g-b" bytewise (a
// locale's collation would put it last), and "é" after every ASCII key.
var groupsPageLetters = []struct {
	key    string
	n      int
	newest int
}{
	{"g-a", 3, 40},
	{"g-b", 1, 60},
	{"g-c", 3, 50},
	{"g-d", 2, 60},
	{"g-e", 1, 5},
	{"Z", 1, 30},
	{"é", 1, 30},
}

// groupsPage is the GroupsPage subtest of Run: every order, walked in pages
// with Limit and Offset, gives each group once, in the same order and with
// the same content as one query for every group; ties are broken by key,
// bytewise; the orders follow new letters and pruned groups; a GroupCounter
// counts what Groups returns.
func groupsPage(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	var letters []dlqops.Record
	for _, g := range groupsPageLetters {
		for i := range g.n {
			at := time.Duration(10+g.newest-(g.n-1-i)) * time.Minute
			letters = append(letters, Letter(fmt.Sprintf("%s-%d", g.key, i), g.key, "t-"+g.key, "h", at))
		}
	}
	mustAdd(t, s, letters...)
	wantCount := []string{"g-a", "g-c", "g-d", "Z", "g-b", "g-e", "é"}
	wantNewest := []string{"g-b", "g-d", "g-c", "g-a", "Z", "é", "g-e"}
	checkGroupPages(t, s, dlqops.GroupQuery{WindowStart: Base.Add(time.Hour)}, wantCount)
	checkGroupPages(t, s, dlqops.GroupQuery{Order: dlqops.GroupsByNewest}, wantNewest)
	// a filter the stores cannot answer from their group counters
	newOnly := dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}}
	checkGroupPages(t, s, dlqops.GroupQuery{Filter: newOnly}, wantCount)
	checkGroupPages(t, s, dlqops.GroupQuery{Filter: newOnly, Order: dlqops.GroupsByNewest}, wantNewest)
	// a filter naming one group, and one a prune selects (failed before minute 65)
	checkGroupPages(t, s, dlqops.GroupQuery{Filter: dlqops.Filter{Group: "g-c"}, WindowStart: Base.Add(time.Hour)}, []string{"g-c"})
	checkGroupPages(t, s, dlqops.GroupQuery{Filter: dlqops.Filter{Until: Base.Add(65 * time.Minute)}, WindowStart: Base.Add(time.Hour)},
		[]string{"g-a", "g-c", "Z", "g-e", "é"})
	checkGroupPages(t, s, dlqops.GroupQuery{By: dlqops.GroupByTopic, Order: dlqops.GroupsByNewest},
		[]string{"t-g-b", "t-g-d", "t-g-c", "t-g-a", "t-Z", "t-é", "t-g-e"})

	t.Run("past the end", func(t *testing.T) {
		got, err := s.Groups(ctx, dlqops.GroupQuery{Limit: 2, Offset: 7})
		if err != nil || len(got) != 0 {
			t.Errorf("offset 7 of 7: got %v, %v want no group", groupKeys(got), err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, q := range []dlqops.GroupQuery{{Limit: -1}, {Offset: -1}, {Order: "oldest"}} {
			if _, err := s.Groups(ctx, q); !errors.Is(err, dlqops.ErrInvalidQuery) {
				t.Errorf("%+v: got %v want ErrInvalidQuery", q, err)
			}
		}
	})
	t.Run("orders follow changes", func(t *testing.T) {
		// g-e gets three more letters, newest of all: first in both orders
		mustAdd(t, s, Letter("g-e-new-1", "g-e", "t-g-e", "h", 71*time.Minute),
			Letter("g-e-new-2", "g-e", "t-g-e", "h", 72*time.Minute), Letter("g-e-new-3", "g-e", "t-g-e", "h", 80*time.Minute))
		// archiving changes neither order
		if _, err := s.SetStatus(ctx, dlqops.Filter{Group: "g-a"}, dlqops.StatusArchived); err != nil {
			t.Fatal(err)
		}
		// the oldest letters go (failed before minute 41): g-e's first (the
		// group stays), Z's and é's (the groups go)
		if n, err := s.Prune(ctx, dlqops.Retention{MaxAge: time.Hour}, Base.Add(time.Hour+41*time.Minute)); err != nil || n != 3 {
			t.Fatalf("prune: got %d, %v want 3", n, err)
		}
		checkGroupPages(t, s, dlqops.GroupQuery{}, []string{"g-a", "g-c", "g-e", "g-d", "g-b"})
		checkGroupPages(t, s, dlqops.GroupQuery{Order: dlqops.GroupsByNewest}, []string{"g-e", "g-b", "g-d", "g-c", "g-a"})
	})
}

// checkGroupPages checks the groups of q (Limit and Offset unset): their
// keys in order are want, pages of every size walk them once and match
// them field by field, as do pages that follow a cursor, a GroupSummer
// sums those past every offset, and a GroupCounter counts them.
func checkGroupPages(t *testing.T, s dlqops.Store, q dlqops.GroupQuery, want []string) {
	t.Helper()
	ctx := context.Background()
	all, err := s.Groups(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got := groupKeys(all); !slices.Equal(got, want) {
		t.Errorf("%+v: got %q want %q", q, got, want)
		return
	}
	for size := 1; size <= len(all)+1; size++ {
		var walked []dlqops.Group
		for off := 0; off < len(all)+size; off += size {
			pq := q
			pq.Limit, pq.Offset = size, off
			page, err := s.Groups(ctx, pq)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > size {
				t.Fatalf("limit %d offset %d: got %d groups", size, off, len(page))
			}
			walked = append(walked, page...)
		}
		if got := groupKeys(walked); !slices.Equal(got, want) {
			t.Errorf("%+v in pages of %d: got %q want %q", q, size, got, want)
			continue
		}
		for i := range walked {
			if err := EqualGroup(walked[i], all[i]); err != nil {
				t.Errorf("%+v in pages of %d: %v", q, size, err)
			}
		}
	}
	checkGroupCursors(t, s, q, all)
	if sm, ok := s.(dlqops.GroupSummer); ok {
		checkGroupSums(t, sm, q, all)
	}
	if c, ok := s.(dlqops.GroupCounter); ok {
		n, err := c.CountGroups(ctx, q)
		if err != nil || n != len(want) {
			t.Errorf("%+v: CountGroups got %d, %v want %d", q, n, err, len(want))
		}
	}
}

func groupKeys(gs []dlqops.Group) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.Key)
	}
	return out
}

// checkGroupSums checks that SumGroups of q past each offset (and past
// the end) is the sum of the groups of all, Groups' answer to q, past it.
func checkGroupSums(t *testing.T, s dlqops.GroupSummer, q dlqops.GroupQuery, all []dlqops.Group) {
	t.Helper()
	by, _ := dlqops.ParseGroupBy(string(q.By))
	for off := 0; off <= len(all)+1; off++ {
		sq := q
		sq.Offset, sq.Limit = off, 1 // the Limit is ignored
		got, err := s.SumGroups(context.Background(), sq)
		if err != nil {
			t.Fatal(err)
		}
		if err := EqualGroup(got, dlqops.SumGroups(all[min(off, len(all)):], "", by)); err != nil {
			t.Errorf("%+v: SumGroups past %d: %v", q, off, err)
		}
	}
	sq := q
	sq.After = dlqops.CursorOf(dlqops.Group{})
	if _, err := s.SumGroups(context.Background(), sq); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("%+v: SumGroups after a cursor: got %v want ErrInvalidQuery", q, err)
	}
}

// checkGroupCursors checks that pages of every size that each follow the
// cursor of the last group of the previous page walk all, Groups' answer
// to q, once, and that a cursor past each group (the group, or a key
// just after its own that no group has) with an offset selects the
// groups after it.
func checkGroupCursors(t *testing.T, s dlqops.Store, q dlqops.GroupQuery, all []dlqops.Group) {
	t.Helper()
	ctx := context.Background()
	for size := 1; size <= len(all)+1; size++ {
		var walked []dlqops.Group
		pq := q
		pq.Limit = size
		for range len(all) + 1 {
			page, err := s.Groups(ctx, pq)
			if err != nil {
				t.Fatal(err)
			}
			walked = append(walked, page...)
			if len(page) < size {
				break
			}
			pq.After = dlqops.CursorOf(page[len(page)-1])
		}
		if got, want := groupKeys(walked), groupKeys(all); !slices.Equal(got, want) {
			t.Errorf("%+v in pages of %d after cursors: got %q want %q", q, size, got, want)
			continue
		}
		for i := range walked {
			if err := EqualGroup(walked[i], all[i]); err != nil {
				t.Errorf("%+v in pages of %d after cursors: %v", q, size, err)
			}
		}
	}
	for i, g := range all {
		for _, c := range []*dlqops.GroupCursor{dlqops.CursorOf(g), {Count: g.Count, LastSeen: g.LastSeen, Key: g.Key + "\x00"}} {
			for off := range 2 {
				cq := q
				cq.After, cq.Offset = c, off
				got, err := s.Groups(ctx, cq)
				if err != nil {
					t.Fatal(err)
				}
				if want := groupKeys(all[min(i+1+off, len(all)):]); !slices.Equal(groupKeys(got), want) {
					t.Errorf("%+v after %+v, offset %d: got %q want %q", q, *c, off, groupKeys(got), want)
				}
			}
		}
	}
}
