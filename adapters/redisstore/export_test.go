package redisstore

import (
	"context"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// GroupsFoldingAll is Groups' path for a filter the counters cannot
// answer as it was before the page was cut from a slim walk: every group
// folded here, then cut. BenchmarkGroupReads compares the two.
func GroupsFoldingAll(ctx context.Context, s *Store, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	by, _ := dlqops.ParseGroupBy(string(q.By))
	f := q.Filter
	f.Limit = 0
	out, err := s.groupsScanned(ctx, by, f, q.WindowStart)
	return dlqops.PageGroups(out, q), err
}
