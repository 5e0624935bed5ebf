package dlqops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// opsGaugeValues collects and returns "<name>{group,status}" -> value.
func opsGaugeValues(t *testing.T, rd *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	out, err := opsCollect(rd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// opsCollect is opsGaugeValues that returns the collection's error with
// what was collected.
func opsCollect(rd *sdkmetric.ManualReader) (map[string]float64, error) {
	var rm metricdata.ResourceMetrics
	err := rd.Collect(context.Background(), &rm)
	out := map[string]float64{}
	key := func(name string, set attribute.Set) string {
		g, _ := set.Value("group")
		st, ok := set.Value("status")
		if ok {
			return fmt.Sprintf("%s{%s,%s}", name, g.AsString(), st.AsString())
		}
		return fmt.Sprintf("%s{%s}", name, g.AsString())
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = p.Value
				}
			}
		}
	}
	return out, err
}

// downStore is a store whose Groups fail while down is set.
type downStore struct {
	*dlqops.MemStore
	down bool
}

func (s *downStore) Groups(ctx context.Context, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	if s.down {
		return nil, errors.New("store down")
	}
	return s.MemStore.Groups(ctx, q)
}

// TestGroupGaugesKeepTheirSeriesWhileTheStoreFails: a collection whose
// store read fails reports the last groups read, ages advancing, and the
// error; once the store answers the gauges read it again. Before, the
// series vanished while the store was down or slow, which resolved every
// alert on them (LeveeDLQOldestDeadLetter's 10m `for:` started over at
// each failed scrape).
func TestGroupGaugesKeepTheirSeriesWhileTheStoreFails(t *testing.T) {
	s := &downStore{MemStore: dlqops.NewMemStore()}
	ctx := context.Background()
	if _, err := s.Add(ctx, dlqtest.Letter("1", "g1", "orders", "h", 0)); err != nil {
		t.Fatal(err)
	}
	now := dlqtest.Base.Add(10 * time.Minute)
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	g, err := dlqops.NewGroupGauges(s, dlqops.WithMeterProvider(mp), dlqops.WithClock(func() time.Time { return now }),
		dlqops.WithGaugeMinInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := opsGaugeValues(t, rd); got["levee.dlq.group.oldest_age{g1}"] != 600 {
		t.Fatalf("store up: %v", got)
	}
	s.down = true
	now = now.Add(time.Hour)
	got, err := opsCollect(rd)
	if err == nil {
		t.Error("store down: the collection reported no error")
	}
	if got["levee.dlq.group.dead_letters{g1,new}"] != 1 || got["levee.dlq.group.oldest_age{g1}"] != 4200 {
		t.Errorf("store down: got %v, want the last groups read, ages advanced", got)
	}
	s.down = false
	if _, err := s.Add(ctx, dlqtest.Letter("2", "g1", "orders", "h", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := opsGaugeValues(t, rd); got["levee.dlq.group.dead_letters{g1,new}"] != 2 {
		t.Errorf("store back: got %v", got)
	}
}

func TestGroupGauges(t *testing.T) {
	s := dlqops.NewMemStore()
	ctx := context.Background()
	if _, err := s.Add(ctx,
		dlqtest.Letter("1", "g1", "orders", "h", 0),
		dlqtest.Letter("2", "g1", "orders", "h", 9*time.Minute),
		dlqtest.Letter("3", "g2", "orders", "h", 8*time.Minute),
		dlqtest.Letter("4", "g3", "orders", "h", 7*time.Minute),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(ctx, dlqops.Filter{IDs: []string{"3"}}, dlqops.StatusArchived); err != nil {
		t.Fatal(err)
	}
	now := dlqtest.Base.Add(10 * time.Minute)
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	g, err := dlqops.NewGroupGauges(s, dlqops.WithMeterProvider(mp), dlqops.WithClock(func() time.Time { return now }),
		dlqops.WithGaugeMinInterval(time.Minute), dlqops.WithGaugeMaxGroups(2))
	if err != nil {
		t.Fatal(err)
	}
	got := opsGaugeValues(t, rd)
	want := map[string]float64{
		"levee.dlq.group.dead_letters{g1,new}":      2,
		"levee.dlq.group.dead_letters{g1,replayed}": 0,
		"levee.dlq.group.dead_letters{g1,archived}": 0,
		"levee.dlq.group.new_in_window{g1}":         1, // only "2" failed in the last 5 minutes
		"levee.dlq.group.oldest_age{g1}":            600,
		"levee.dlq.group.age{g1}":                   600,
		// g2 and g3 fold into "other"
		"levee.dlq.group.dead_letters{other,new}":      1,
		"levee.dlq.group.dead_letters{other,replayed}": 0,
		"levee.dlq.group.dead_letters{other,archived}": 1,
		"levee.dlq.group.new_in_window{other}":         2,
		"levee.dlq.group.oldest_age{other}":            180,
		"levee.dlq.group.age{other}":                   180, // the earlier first letter of g2 and g3 (g3's, at 7m)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d points want %d: %v", len(got), len(want), got)
	}
	// within the min interval the cached groups are reused, ages advance
	if _, err := s.Add(ctx, dlqtest.Letter("5", "g1", "orders", "h", 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	got = opsGaugeValues(t, rd)
	if got["levee.dlq.group.dead_letters{g1,new}"] != 2 || got["levee.dlq.group.oldest_age{g1}"] != 630 || got["levee.dlq.group.age{g1}"] != 630 {
		t.Errorf("cached: got %v", got)
	}
	now = now.Add(time.Minute)
	if got = opsGaugeValues(t, rd); got["levee.dlq.group.dead_letters{g1,new}"] != 3 {
		t.Errorf("after min interval: got %v", got)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got = opsGaugeValues(t, rd); len(got) != 0 {
		t.Errorf("after Close: %v", got)
	}
}

func TestNewGroupGaugesInvalid(t *testing.T) {
	s := dlqops.NewMemStore()
	for name, opts := range map[string][]dlqops.Option{
		"window":     {dlqops.WithGaugeWindow(0)},
		"interval":   {dlqops.WithGaugeMinInterval(-1)},
		"timeout":    {dlqops.WithStoreTimeout(0)},
		"max groups": {dlqops.WithGaugeMaxGroups(0)},
	} {
		if _, err := dlqops.NewGroupGauges(s, opts...); !errors.Is(err, dlqops.ErrInvalidConfig) {
			t.Errorf("%s: got %v want ErrInvalidConfig", name, err)
		}
	}
	if _, err := dlqops.NewGroupGauges(nil); !errors.Is(err, dlqops.ErrInvalidConfig) {
		t.Errorf("nil store: got %v", err)
	}
}
