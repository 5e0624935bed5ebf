package dlqtest

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ScaleLetters yields n letters in groups failure groups for benchmarks
// at scale, the same on every call: group sizes follow a Zipf law (of
// 200,000 letters in 5,000 groups, 4,979 groups get letters and the
// largest 9,533), failures spread over the week before Base (one in a
// thousand in its last 5 minutes), one letter in ten replayed and one in
// ten archived; 20 topics, 30 handlers. The letters are small (no payload
// to speak of), so seeding costs the indexes, not the bytes; a caller
// holds only what it keeps of them.
func ScaleLetters(n, groups int) iter.Seq[dlqops.Record] {
	return func(yield func(dlqops.Record) bool) {
		r := rand.New(rand.NewPCG(1, 2))
		z := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 4, uint64(groups-1))
		for i := range n {
			g := int(z.Uint64())
			ago := time.Duration(r.Int64N(int64(7 * 24 * time.Hour)))
			if i%1000 == 0 {
				ago = time.Duration(r.Int64N(int64(5 * time.Minute)))
			}
			dl := Letter(fmt.Sprintf("s-%07d", i), fmt.Sprintf("fp-%06d", g), fmt.Sprintf("topic-%02d", g%20),
				fmt.Sprintf("handler-%02d", g%30), -ago.Truncate(time.Microsecond))
			dl.Metadata = map[string]string{"k": "v"}
			dl.Payload = []byte("{}")
			switch i % 10 {
			case 3:
				dl.Status = dlqops.StatusReplayed
			case 7:
				dl.Status = dlqops.StatusArchived
			}
			if !yield(dl) {
				return
			}
		}
	}
}

// hideSummer is a Store without its GroupSummer: what GroupGauges and
// PreviewPrune read from before stores summed groups.
type hideSummer struct{ dlqops.Store }

// BenchGroupReads benchmarks the group gauges' collection (100 groups)
// and the prune preview of a max count of 1,000, alone and with a max age
// of 6 days, at Base, each
// through s as it is ("new": its GroupSummer) and with the GroupSummer
// hidden ("old": every group read and folded), after checking that both
// give the same gauges and the same preview. s holds the letters of
// ScaleLetters (or others failing before Base).
func BenchGroupReads(b *testing.B, s dlqops.Store) {
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
			if previews[i], err = dlqops.PreviewPrune(context.Background(), p.store, r, Base); err != nil {
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
					if _, err := dlqops.PreviewPrune(context.Background(), p.store, r, Base); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// collectGauges collects the group gauges of s once, at Base, and returns
// "<name>{group,status}" -> value.
func collectGauges(tb testing.TB, s dlqops.Store) map[string]float64 {
	tb.Helper()
	rd := sdkmetric.NewManualReader()
	g, err := dlqops.NewGroupGauges(s, dlqops.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))),
		dlqops.WithClock(func() time.Time { return Base }), dlqops.WithGaugeMinInterval(0), dlqops.WithStoreTimeout(time.Minute))
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
