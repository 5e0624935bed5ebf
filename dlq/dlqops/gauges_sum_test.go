package dlqops_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// readCounter is a Store that records how many groups each Groups call
// returned; it hides whatever optional interface its Store has.
type readCounter struct {
	dlqops.Store
	mu    sync.Mutex
	reads []int // guarded by mu
}

func (c *readCounter) Groups(ctx context.Context, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	gs, err := c.Store.Groups(ctx, q)
	c.mu.Lock()
	c.reads = append(c.reads, len(gs))
	c.mu.Unlock()
	return gs, err
}

// summingCounter is a readCounter whose store sums groups.
type summingCounter struct {
	*readCounter
	sum dlqops.GroupSummer
}

func (c summingCounter) SumGroups(ctx context.Context, q dlqops.GroupQuery) (dlqops.Group, error) {
	return c.sum.SumGroups(ctx, q)
}

// manyGroups returns a MemStore of 40 groups of 1 to 40 letters, some
// replayed or archived, failing over the last 80 minutes before now.
func manyGroups(t *testing.T) (*dlqops.MemStore, time.Time) {
	t.Helper()
	s := dlqops.NewMemStore()
	ctx := context.Background()
	var letters []dlqops.Record
	for g := range 40 {
		for i := range g%13*3 + 1 {
			letters = append(letters, dlqtest.Letter(fmt.Sprintf("l-%d-%d", g, i), fmt.Sprintf("g%02d", g), "orders", "h",
				time.Duration(g*7+i*3)%80*time.Minute))
		}
	}
	if _, err := s.Add(ctx, letters...); err != nil {
		t.Fatal(err)
	}
	for st, f := range map[dlqops.Status]dlqops.Filter{
		dlqops.StatusArchived: {Until: dlqtest.Base.Add(10 * time.Minute)},
		dlqops.StatusReplayed: {Since: dlqtest.Base.Add(30 * time.Minute), Until: dlqtest.Base.Add(40 * time.Minute)},
	} {
		if _, err := s.SetStatus(ctx, f, st); err != nil {
			t.Fatal(err)
		}
	}
	return s, dlqtest.Base.Add(80 * time.Minute)
}

// gaugeValues returns the gauges of store at now, with at most n groups.
func gaugeValues(t *testing.T, store dlqops.Store, now time.Time, n int) map[string]float64 {
	t.Helper()
	rd := sdkmetric.NewManualReader()
	g, err := dlqops.NewGroupGauges(store, dlqops.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))),
		dlqops.WithClock(func() time.Time { return now }), dlqops.WithGaugeMaxGroups(n))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	return opsGaugeValues(t, rd)
}

// TestGroupGaugesReadWhatTheyExport: on a store that sums groups, a
// collection reads the groups it names and one more, not every group, and
// exports what folding every group exports (group="other" included).
func TestGroupGaugesReadWhatTheyExport(t *testing.T) {
	s, now := manyGroups(t)
	for _, n := range []int{1, 2, 5, 39, 40, 41, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			folded := &readCounter{Store: s}
			want := gaugeValues(t, folded, now, n)
			summed := summingCounter{readCounter: &readCounter{Store: s}, sum: s}
			got := gaugeValues(t, summed, now, n)
			if !maps.Equal(got, want) {
				t.Errorf("summed store: got %v\nwant (every group folded) %v", got, want)
			}
			if _, ok := want["levee.dlq.group.dead_letters{other,new}"]; ok != (n < 40) {
				t.Errorf("other exported: got %v want %v", ok, n < 40)
			}
			for _, r := range summed.reads {
				if r > n+1 {
					t.Errorf("a collection read %d groups to export %d (store calls: %v)", r, n, summed.reads)
				}
			}
		})
	}
}
