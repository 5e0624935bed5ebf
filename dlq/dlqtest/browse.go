package dlqtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// browser returns the store of one subtest as a dlqops.Browser, or skips
// the subtest when it is not one.
func browser(t *testing.T, newStore NewStore) dlqops.Browser {
	t.Helper()
	b, ok := newStore(t).(dlqops.Browser)
	if !ok {
		t.Skip("the store is not a dlqops.Browser")
	}
	return b
}

// browserPage is the BrowserPage subtest of Run: newest first, filters,
// class and case-insensitive text, and a cursor that walks every page once
// (ties on FailedAt by ID, descending).
func browserPage(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := browser(t, newStore)
	var letters []dlqops.Record
	for i, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		dl := Letter(id, "g1", "orders", "ship", time.Duration(i/2)*time.Minute) // pairs share a time
		if id == "c" || id == "f" {
			dl.ErrorClass, dl.Error = "validation", "Schema MISMATCH in "+id
		}
		letters = append(letters, dl)
	}
	letters = append(letters, Letter("z", "g2", "payments", "pay", time.Hour))
	mustAdd(t, s, letters...)
	tests := []struct {
		name string
		q    dlqops.PageQuery
		want []string
	}{
		{"all", dlqops.PageQuery{}, []string{"z", "g", "f", "e", "d", "c", "b", "a"}},
		{"group in pages of three", dlqops.PageQuery{Filter: dlqops.Filter{Group: "g1", Limit: 3}}, []string{"g", "f", "e", "d", "c", "b", "a"}},
		{"topic", dlqops.PageQuery{Filter: dlqops.Filter{Topic: "payments"}}, []string{"z"}},
		{"class", dlqops.PageQuery{Class: "validation"}, []string{"f", "c"}},
		{"text", dlqops.PageQuery{Text: "schema mismatch"}, []string{"f", "c"}},
		{"text and until", dlqops.PageQuery{Text: "MISMATCH", Filter: dlqops.Filter{Until: Base.Add(2 * time.Minute)}}, []string{"c"}},
		{"before", dlqops.PageQuery{Before: &dlqops.Cursor{At: Base.Add(time.Minute), ID: "d"}}, []string{"c", "b", "a"}},
		{"none", dlqops.PageQuery{Text: "nothing like it"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := walkPages(t, s, tt.q)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v want %v", got, tt.want)
			}
		})
	}
	t.Run("pages of two", func(t *testing.T) {
		var got []string
		q := dlqops.PageQuery{Filter: dlqops.Filter{Limit: 2}}
		for range 10 {
			p, err := s.Page(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Letters) > 2 {
				t.Fatalf("page of %d letters, want at most 2", len(p.Letters))
			}
			got = append(got, IDs(p.Letters)...)
			if p.Next == nil {
				break
			}
			q.Before = p.Next
		}
		if want := []string{"z", "g", "f", "e", "d", "c", "b", "a"}; !slices.Equal(got, want) {
			t.Errorf("got %v want %v", got, want)
		}
	})
	if _, err := s.Page(ctx, dlqops.PageQuery{Filter: dlqops.Filter{Limit: dlqops.MaxPageSize + 1}}); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("oversized page: got %v want ErrInvalidQuery", err)
	}
}

// walkPages follows Next until the end (a store may return partial pages).
func walkPages(t *testing.T, s dlqops.Browser, q dlqops.PageQuery) []string {
	t.Helper()
	var got []string
	for range 1000 {
		p, err := s.Page(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, IDs(p.Letters)...)
		if p.Next == nil {
			return got
		}
		q.Before = p.Next
	}
	t.Fatal("pages never end")
	return nil
}

// browserHourly is the BrowserHourly subtest of Run.
func browserHourly(t *testing.T, newStore NewStore) {
	s := browser(t, newStore)
	mustAdd(t, s,
		Letter("1", "g1", "orders", "ship", -time.Hour),
		Letter("2", "g1", "orders", "ship", 0),
		Letter("3", "g1", "orders", "ship", 30*time.Minute),
		Letter("4", "g1", "payments", "pay", 2*time.Hour+time.Minute),
		Letter("5", "g2", "orders", "ship", time.Hour),
		Letter("6", "g1", "orders", "ship", 5*time.Hour),
	)
	tests := []struct {
		name string
		q    dlqops.HourlyQuery
		want map[string][]int
	}{
		{"fingerprint", dlqops.HourlyQuery{Keys: []string{"g1", "g2", "g3"}, Since: Base.Add(10 * time.Minute), Hours: 3},
			map[string][]int{"g1": {2, 0, 1}, "g2": {0, 1, 0}, "g3": {0, 0, 0}}},
		{"topic", dlqops.HourlyQuery{By: dlqops.GroupByTopic, Keys: []string{"orders"}, Since: Base.Add(-time.Hour), Hours: 2},
			map[string][]int{"orders": {1, 2}}},
		{"handler", dlqops.HourlyQuery{By: dlqops.GroupByHandler, Keys: []string{"pay"}, Since: Base, Hours: 3},
			map[string][]int{"pay": {0, 0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Hourly(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v want %v", got, tt.want)
			}
			for k, w := range tt.want {
				if !slices.Equal(got[k], w) {
					t.Errorf("%s: got %v want %v", k, got[k], w)
				}
			}
		})
	}
	if _, err := s.Hourly(context.Background(), dlqops.HourlyQuery{Keys: []string{"g1"}, Since: Base, Hours: dlqops.MaxHours + 1}); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("too many hours: got %v want ErrInvalidQuery", err)
	}
}

// browserEvents is the BrowserEvents subtest of Run: events come back
// oldest first, the newest limit of them, bounded, and go with a pruned
// letter.
func browserEvents(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := browser(t, newStore)
	mustAdd(t, s, Letter("1", "g1", "orders", "ship", 0), Letter("2", "g1", "orders", "ship", time.Hour))
	long := string(make([]byte, 2*dlqops.MaxEventDetail))
	for i, a := range []string{dlqops.EventReplayed, dlqops.EventFailedAgain, dlqops.EventArchived} {
		ev := dlqops.Event{LetterID: "1", At: Base.Add(time.Duration(i) * time.Second), Actor: "alice", Action: a, Detail: "d" + a, ReplayUUID: "u"}
		if i == 2 {
			ev.Detail = long
		}
		if err := s.AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Events(ctx, "1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Action != dlqops.EventFailedAgain || got[1].Action != dlqops.EventArchived {
		t.Fatalf("got %+v want the last two events, oldest first", got)
	}
	if e := got[0]; e.LetterID != "1" || e.Actor != "alice" || e.Detail != "dfailed_again" || e.ReplayUUID != "u" || !e.At.Equal(Base.Add(time.Second)) {
		t.Errorf("round trip: got %+v", e)
	}
	if n := len(got[1].Detail); n > dlqops.MaxEventDetail {
		t.Errorf("detail of %d bytes kept, want at most %d", n, dlqops.MaxEventDetail)
	}
	if got, err := s.Events(ctx, "2", 10); err != nil || len(got) != 0 {
		t.Errorf("no events: got %v %v", got, err)
	}
	if err := s.AddEvent(ctx, dlqops.Event{LetterID: "1"}); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("event without action: got %v want ErrInvalidQuery", err)
	}
	if _, err := s.Prune(ctx, dlqops.Retention{MaxCount: 1}, Base); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Events(ctx, "1", 10); err != nil || len(got) != 0 {
		t.Errorf("events of a pruned letter: got %v %v, want none", got, err)
	}
}
