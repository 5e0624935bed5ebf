//go:build integration

package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/internal/groupbench"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// BenchmarkGroupReads compares the group gauges and the prune preview
// reading every group ("old") with SumGroups ("new") over 200,000 letters
// in about 5,000 groups (dlqtest.ScaleLetters), seeded through Add (the
// store's batched scripts):
//
//	cd adapters && go test -tags integration -run '^$' -bench BenchmarkGroupReads -benchtime 10x ./redisstore/
func BenchmarkGroupReads(b *testing.B) {
	s := openStore(b, newPrefix(b), redisstore.WithTimeout(time.Minute))
	chunk := make([]dlqops.Record, 0, 5000)
	for dl := range dlqtest.ScaleLetters(200_000, 5_000) {
		if chunk = append(chunk, dl); len(chunk) == cap(chunk) {
			if _, err := s.Add(context.Background(), chunk...); err != nil {
				b.Fatal(err)
			}
			chunk = chunk[:0]
		}
	}
	groupbench.Run(b, s)
	benchFilteredGroups(b, s)
}

// benchFilteredGroups compares a page of the groups of a filter the
// counters cannot answer (the 20 largest groups of new letters, as
// `levee dlq groups --status new --limit 20` asks) folding every group
// here ("old") with Groups ("new"), after checking they are the same.
func benchFilteredGroups(b *testing.B, s *redisstore.Store) {
	ctx := context.Background()
	q := dlqops.GroupQuery{Filter: dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}}, Limit: 21,
		WindowStart: dlqtest.Base.Add(-5 * time.Minute)}
	paths := []struct {
		name   string
		groups func() ([]dlqops.Group, error)
	}{
		{"old", func() ([]dlqops.Group, error) { return redisstore.GroupsFoldingAll(ctx, s, q) }},
		{"new", func() ([]dlqops.Group, error) { return s.Groups(ctx, q) }},
	}
	var got [2][]dlqops.Group
	for i, p := range paths {
		var err error
		if got[i], err = p.groups(); err != nil {
			b.Fatal(err)
		}
	}
	if len(got[0]) != 21 || len(got[1]) != 21 {
		b.Fatalf("got %d and %d groups want 21", len(got[0]), len(got[1]))
	}
	for i := range got[0] {
		if err := dlqtest.EqualGroup(got[1][i], got[0][i]); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range paths {
		b.Run("filtered/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.groups(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
