package dlqtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// listFilters is the ListFilters subtest of Run.
func listFilters(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	mustAdd(t, s,
		Letter("1", "g1", "orders", "ship", 0),
		Letter("2", "g1", "payments", "pay", time.Minute),
		Letter("3", "g2", "orders", "ship", 2*time.Minute),
		Letter("4", "g2", "orders", "ship", 3*time.Minute),
	)
	if n, err := s.SetStatus(ctx, dlqops.Filter{IDs: []string{"4"}}, dlqops.StatusArchived); err != nil || n != 1 {
		t.Fatalf("SetStatus: %d %v", n, err)
	}
	tests := []struct {
		name string
		f    dlqops.Filter
		want []string
	}{
		{"all", dlqops.Filter{}, []string{"1", "2", "3", "4"}},
		{"group", dlqops.Filter{Group: "g1"}, []string{"1", "2"}},
		{"topic", dlqops.Filter{Topic: "orders"}, []string{"1", "3", "4"}},
		{"handler", dlqops.Filter{Handler: "pay"}, []string{"2"}},
		{"dlq topic", dlqops.Filter{DLQTopic: "payments.dlq"}, []string{"2"}},
		{"ids", dlqops.Filter{IDs: []string{"3", "1", "x"}}, []string{"1", "3"}},
		{"status", dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusArchived}}, []string{"4"}},
		{"since", dlqops.Filter{Since: Base.Add(time.Minute)}, []string{"2", "3", "4"}},
		{"until", dlqops.Filter{Until: Base.Add(2 * time.Minute)}, []string{"1", "2"}},
		{"range", dlqops.Filter{Since: Base.Add(time.Minute), Until: Base.Add(3 * time.Minute)}, []string{"2", "3"}},
		{"limit", dlqops.Filter{Topic: "orders", Limit: 2}, []string{"1", "3"}},
		{"none", dlqops.Filter{Group: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if ids := IDs(got); !slices.Equal(ids, tt.want) {
				t.Errorf("got %v want %v", ids, tt.want)
			}
		})
	}
	if _, err := s.List(ctx, dlqops.Filter{Statuses: []dlqops.Status{"bogus"}}); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("bad status: got %v want ErrInvalidQuery", err)
	}
}

// groups is the Groups subtest of Run.
func groups(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	a := Letter("1", "g1", "orders", "ship", 0)
	b := Letter("2", "g1", "payments", "pay", time.Minute)
	c := Letter("3", "g1", "orders", "ship", 10*time.Minute)
	c.Error, c.ErrorClass = "newest error", "validation"
	d := Letter("4", "g2", "orders", "ship", 5*time.Minute)
	mustAdd(t, s, a, b, c, d)
	claimAndMark(t, s, "1")
	if _, err := s.SetStatus(ctx, dlqops.Filter{IDs: []string{"2"}}, dlqops.StatusArchived); err != nil {
		t.Fatal(err)
	}
	groups, err := s.Groups(ctx, dlqops.GroupQuery{WindowStart: Base.Add(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 {
		t.Fatalf("got %d groups want 2: %+v", len(groups), groups)
	}
	g := groups[0]
	want := dlqops.Group{Key: "g1", By: dlqops.GroupByFingerprint, Count: 3, New: 1, Replayed: 1, Archived: 1, InWindow: 1,
		FirstSeen: a.FailedAt, LastSeen: c.FailedAt, OldestNew: c.FailedAt,
		Topics: []string{"orders", "payments"}, Handlers: []string{"pay", "ship"},
		SampleError: "newest error", ErrorClass: "validation"}
	if err := EqualGroup(g, want); err != nil {
		t.Error(err)
	}
	if groups[1].Key != "g2" || groups[1].Count != 1 || groups[1].InWindow != 1 || !groups[1].OldestNew.Equal(d.FailedAt) {
		t.Errorf("g2: got %+v", groups[1])
	}
	byTopic, err := s.Groups(ctx, dlqops.GroupQuery{By: dlqops.GroupByTopic})
	if err != nil {
		t.Fatal(err)
	}
	if len(byTopic) != 2 || byTopic[0].Key != "orders" || byTopic[0].Count != 3 || byTopic[1].Key != "payments" {
		t.Errorf("by topic: got %+v", byTopic)
	}
	byHandler, err := s.Groups(ctx, dlqops.GroupQuery{By: dlqops.GroupByHandler, Filter: dlqops.Filter{Group: "g1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(byHandler) != 2 || byHandler[0].Key != "ship" || byHandler[0].Count != 2 || byHandler[1].Key != "pay" {
		t.Errorf("by handler in g1: got %+v", byHandler)
	}
	if _, err := s.Groups(ctx, dlqops.GroupQuery{By: "bogus"}); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("bad group by: got %v want ErrInvalidQuery", err)
	}
}
