package dlqtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// prune is the Prune subtest of Run.
func prune(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	for i := range 10 {
		mustAdd(t, s, Letter(fmt.Sprintf("%02d", i), "g", "t", "h", time.Duration(i)*time.Hour))
	}
	n, err := s.Prune(ctx, dlqops.Retention{MaxAge: 5 * time.Hour}, Base.Add(9*time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("prune by age: got %d, %v want 4", n, err)
	}
	n, err = s.Prune(ctx, dlqops.Retention{MaxCount: 3}, Base.Add(9*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("prune by count: got %d, %v want 3", n, err)
	}
	left, _ := s.List(ctx, dlqops.Filter{})
	if !slices.Equal(IDs(left), []string{"07", "08", "09"}) {
		t.Errorf("left: got %v want newest three", IDs(left))
	}
}

// previewPruneMatchesPrune is the PreviewPruneMatchesPrune subtest of Run.
func previewPruneMatchesPrune(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	for _, r := range []dlqops.Retention{{MaxAge: 5 * time.Hour}, {MaxCount: 3}, {MaxAge: 5 * time.Hour, MaxCount: 3}, {MaxAge: 20 * time.Hour}} {
		s := newStore(t)
		for i := range 10 {
			mustAdd(t, s, Letter(fmt.Sprintf("%02d", i), fmt.Sprintf("g%d", i%2), "t", "h", time.Duration(i)*time.Hour))
		}
		now := Base.Add(9 * time.Hour)
		p, err := dlqops.PreviewPrune(ctx, s, r, now)
		if err != nil {
			t.Fatal(err)
		}
		if left, _ := s.List(ctx, dlqops.Filter{}); len(left) != 10 {
			t.Fatalf("%+v: the preview deleted letters: %d left", r, len(left))
		}
		n, err := s.Prune(ctx, r, now)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total() != n {
			t.Errorf("%+v: preview %d (%+v), prune deleted %d", r, p.Total(), p, n)
		}
		sum := 0
		for _, g := range p.ByAge {
			sum += g.Count
		}
		if sum != p.Aged {
			t.Errorf("%+v: groups sum to %d, aged %d", r, sum, p.Aged)
		}
	}
}
