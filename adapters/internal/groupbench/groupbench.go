// Package groupbench benchmarks the dead-letter stores' group reads (the
// group gauges and the prune preview) at scale, for the PostgreSQL and
// Redis stores' integration benchmarks. It lives in the adapters module
// because it reads the gauges through the OTel SDK, which the core module
// (and so dlq/dlqtest) does not import.
package groupbench

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// hideSummer is a Store without its GroupSummer: what GroupGauges and
// PreviewPrune read from before stores summed groups.
type hideSummer struct{ dlqops.Store }

// Run benchmarks the group gauges' collection (100 groups)
// and the prune preview of a max count of 1,000, alone and with a max age
// of 6 days, at dlqtest.Base, each
// through s as it is ("new": its GroupSummer) and with the GroupSummer
// hidden ("old": every group read and folded), after checking that both
// give the same gauges and the same preview. s holds the letters of
// dlqtest.ScaleLetters (or others failing before dlqtest.Base).
func Run(b *testing.B, s dlqops.Store) {
	if _, ok := s.(dlqops.GroupSummer); !ok {
		b.Fatalf("%T is not a GroupSummer", s)
	}
	paths := []struct {
		name  string
		store dlqops.Store
	}{{"old", hideSummer{s}}, {"new", s}}
	var gauges [2]map[string]float64
	for i, p := range paths {
		gauges[i] = collectGauges(b, p.store)
	}
	if !maps.Equal(gauges[0], gauges[1]) {
		b.Fatalf("gauges differ:\nold %v\nnew %v", gauges[0], gauges[1])
	}
	if gauges[0][`levee.dlq.group.dead_letters{other,new}`] == 0 {
		b.Fatalf("no group=\"other\": the store holds too few groups to measure the fold")
	}
	for _, p := range paths {
		b.Run("gauges/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				collectGauges(b, p.store)
			}
		})
	}
	for _, r := range []dlqops.Retention{{MaxCount: 1000}, {MaxAge: 6 * 24 * time.Hour, MaxCount: 1000}} {
		var previews [2]dlqops.PrunePreview
		for i, p := range paths {
			var err error
			if previews[i], err = dlqops.PreviewPrune(context.Background(), p.store, r, dlqtest.Base); err != nil {
				b.Fatal(err)
			}
		}
		if !reflect.DeepEqual(previews[0], previews[1]) {
			b.Fatalf("%+v: previews differ:\nold %+v\nnew %+v", r, previews[0], previews[1])
		}
		name := "preview/max_count"
		if r.MaxAge > 0 {
			name = "preview/max_age_and_count"
		}
		for _, p := range paths {
			b.Run(name+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := dlqops.PreviewPrune(context.Background(), p.store, r, dlqtest.Base); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// collectGauges collects the group gauges of s once, at dlqtest.Base, and returns
// "<name>{group,status}" -> value.
func collectGauges(tb testing.TB, s dlqops.Store) map[string]float64 {
	tb.Helper()
	rd := sdkmetric.NewManualReader()
	g, err := dlqops.NewGroupGauges(s, dlqops.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))),
		dlqops.WithClock(func() time.Time { return dlqtest.Base }), dlqops.WithGaugeMinInterval(0), dlqops.WithStoreTimeout(time.Minute))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	key := func(name string, set attribute.Set) string {
		gr, _ := set.Value("group")
		st, _ := set.Value("status")
		return fmt.Sprintf("%s{%s,%s}", name, gr.AsString(), st.AsString())
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
	return out
}
