//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestCountedGroupsMatchTheAggregate: after inserts, claims, replays,
// archives and prunes (each a trigger's statement), the counters' groups
// equal the groups aggregated from the letters, for every grouping, with
// and without a group named.
func TestCountedGroupsMatchTheAggregate(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newSchema(t))
	var letters []dlqops.Record
	for i := range 300 {
		dl := dlqtest.Letter(fmt.Sprintf("l-%03d", i), fmt.Sprintf("g%d", i%7), fmt.Sprintf("t%d", i%3), fmt.Sprintf("h%d", i%5), time.Duration(i)*time.Second)
		dl.Error = fmt.Sprintf("failure %d", i%11)
		letters = append(letters, dl)
	}
	if _, err := s.Add(ctx, letters...); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{Group: "g1"}, Owner: "o", Now: dlqtest.Base, Lease: time.Minute, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range claimed[:10] {
		if err := s.MarkReplayed(ctx, dl.ID, "o", "r", dlqtest.Base); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetStatus(ctx, dlqops.Filter{Topic: "t2", Limit: 40}, dlqops.StatusArchived); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, dlqops.Retention{MaxCount: 250}, dlqtest.Base); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	hq := dlqops.HourlyQuery{Keys: []string{"g0", "g1", "g6"}, Since: dlqtest.Base, Hours: 2}
	hours, err := s.Hourly(ctx, hq)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"g0": {0, 0}, "g1": {0, 0}, "g6": {0, 0}}
	for _, dl := range all {
		if c, ok := want[dl.Fingerprint]; ok && hq.Hour(dl.FailedAt) >= 0 {
			c[hq.Hour(dl.FailedAt)]++
		}
	}
	if fmt.Sprint(hours) != fmt.Sprint(want) {
		t.Errorf("hourly counters %v, want %v (from the letters)", hours, want)
	}
	everything := dlqops.Filter{Since: dlqtest.Base.Add(-time.Hour)} // not counted: aggregated
	window := dlqtest.Base.Add(200 * time.Second)
	for _, by := range []dlqops.GroupBy{dlqops.GroupByFingerprint, dlqops.GroupByTopic, dlqops.GroupByHandler} {
		got, err := s.Groups(ctx, dlqops.GroupQuery{By: by, WindowStart: window})
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.Groups(ctx, dlqops.GroupQuery{By: by, Filter: everything, WindowStart: window})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d groups, want %d", by, len(got), len(want))
		}
		for i := range got {
			if err := dlqtest.EqualGroup(got[i], want[i]); err != nil {
				t.Errorf("%s: %v", by, err)
			}
		}
		one := dlqops.Filter{Group: want[0].Key}
		switch by {
		case dlqops.GroupByTopic:
			one = dlqops.Filter{Topic: want[0].Key}
		case dlqops.GroupByHandler:
			one = dlqops.Filter{Handler: want[0].Key}
		}
		single, err := s.Groups(ctx, dlqops.GroupQuery{By: by, Filter: one, WindowStart: window})
		if err != nil || len(single) != 1 {
			t.Fatalf("%s one group: %v %v", by, single, err)
		}
		if err := dlqtest.EqualGroup(single[0], want[0]); err != nil {
			t.Errorf("%s one group: %v", by, err)
		}
	}
}
