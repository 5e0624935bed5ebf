package dlqops_test

import (
	"context"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// boundedReads is a store that records the most letters one List or Page
// call returned.
type boundedReads struct {
	*dlqops.MemStore
	most int
}

func (s *boundedReads) List(ctx context.Context, f dlqops.Filter) ([]dlqops.Record, error) {
	l, err := s.MemStore.List(ctx, f)
	s.most = max(s.most, len(l))
	return l, err
}

func (s *boundedReads) Page(ctx context.Context, q dlqops.PageQuery) (dlqops.LetterPage, error) {
	p, err := s.MemStore.Page(ctx, q)
	s.most = max(s.most, len(p.Letters))
	return p, err
}

// TestDryRunReadsInPages: a dry run of a large selection reads the store
// a page (dlqops.MaxPageSize letters) at a time and reports every letter,
// oldest first as a replay takes them. Before, it read the whole
// selection in one List: on PostgreSQL a selection of 170,000 letters
// outlasted the 5 s store timeout, and the runbook's dry run failed on
// the groups that need it most.
func TestDryRunReadsInPages(t *testing.T) {
	s := &boundedReads{MemStore: dlqops.NewMemStore()}
	const n = 2*dlqops.MaxPageSize + 7
	opsSeed(t, s.MemStore, n)
	rep, err := opsReplayer(t, s, &opsPublisher{}).Replay(context.Background(), dlqops.ReplaySelection{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != n || len(rep.Items) != n {
		t.Fatalf("dry run: would replay %d (%d items), want %d", rep.Replayed, len(rep.Items), n)
	}
	if s.most > dlqops.MaxPageSize {
		t.Errorf("dry run: one store call returned %d letters, want at most %d", s.most, dlqops.MaxPageSize)
	}
	all, err := s.MemStore.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range rep.Items {
		if it.ID != all[i].ID {
			t.Fatalf("dry run item %d: %s, want %s (the replay order, oldest first)", i, it.ID, all[i].ID)
		}
	}
}
