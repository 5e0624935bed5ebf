package telemetrytest_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
)

// buildEverything builds every Levee type that takes a meter provider,
// each with the options that create all of its instruments (per-key,
// adaptive and fleet limits among them), and closes them.
func buildEverything(t *testing.T, mp metric.MeterProvider) {
	t.Helper()
	var closers []func() error
	must := func(c interface{ Close() error }, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		closers = append(closers, c.Close)
	}
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	if _, err := tracing.New(tracing.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	if _, err := tracing.NewMetrics(tracing.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	must(breaker.New(breaker.WithMeterProvider(mp)))
	must(breaker.NewFleet(breaker.Fleet{Store: fleet.NewMemStore(), Key: "b", Name: "b", MeterProvider: mp}))
	must(ratelimit.New(ratelimit.WithRate(10), ratelimit.WithPerKey(1, 1), ratelimit.WithKeyMetadata("k"),
		ratelimit.WithAdaptive(ratelimit.Adaptive{Min: 1, Max: 10}), ratelimit.WithMeterProvider(mp)))
	must(ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "r", Rate: 10}),
		ratelimit.WithMeterProvider(mp)))
	must(priority.NewScheduler(priority.WithMeterProvider(mp)))
	must(batch.New(func(context.Context, []*message.Message) error { return nil }, batch.WithMeterProvider(mp)))
	if _, err := dlq.New(nopPublisher{}, dlq.WithTopic("t.dlq"), dlq.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	store := dlqops.NewMemStore()
	if _, err := dlqops.NewMonitor(store, dlqops.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	if _, err := dlqops.NewReplayer(store, nopPublisher{}, dlqops.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	must(dlqops.NewGroupGauges(store, dlqops.WithMeterProvider(mp), dlqops.WithStoreTimeout(time.Second)))
	ds, err := dedup.NewMemStore(10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dedup.New(dedup.WithStore(ds), dedup.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
}

// documentedInstruments reads docs/TELEMETRY.md's instrument tables: each
// row whose first cell is a levee.* name and whose second is an
// instrument kind, with the unit of its third cell.
func documentedInstruments(t *testing.T) map[string]instrument {
	t.Helper()
	raw, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(levee\\.[a-z_.]+)`[^|]*\\| ((?:Int64|Float64)[A-Za-z]+)[^|]*\\| `?([^|`]*)`? \\|")
	out := map[string]instrument{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		if prev, dup := out[m[1]]; dup {
			t.Errorf("docs/TELEMETRY.md documents %s twice (%v and %v)", m[1], prev, m[2:])
		}
		out[m[1]] = instrument{kind: m[2], unit: m[3]}
	}
	return out
}

// TestEveryInstrumentDocumented: the instruments Levee's packages create
// are exactly those docs/TELEMETRY.md's tables list, each with the
// documented kind and unit.
func TestEveryInstrumentDocumented(t *testing.T) {
	inv := &inventory{got: map[string]instrument{}}
	buildEverything(t, inv)
	docs := documentedInstruments(t)
	if len(inv.got) < 30 {
		t.Fatalf("only %d instruments created: %v", len(inv.got), inv.got)
	}
	var names []string
	for n := range inv.got {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got := inv.got[n]
		d, ok := docs[n]
		switch {
		case !ok:
			t.Errorf("%s (%s, unit %q) is created but docs/TELEMETRY.md has no row for it", n, got.kind, got.unit)
		case d.kind != got.kind:
			t.Errorf("%s: docs/TELEMETRY.md says %s, the code creates %s", n, d.kind, got.kind)
		case d.unit != got.unit:
			t.Errorf("%s: docs/TELEMETRY.md says unit %q, the code's is %q", n, d.unit, got.unit)
		}
	}
	for n := range docs {
		if _, ok := inv.got[n]; !ok {
			t.Errorf("docs/TELEMETRY.md documents %s, which no package creates", n)
		}
	}
}

// TestEveryHistogramHasItsBuckets: every histogram any package creates
// declares its bucket boundaries (OTel's defaults are meant for
// milliseconds), the duration histograms of wantLayouts their layout, and
// the others the range their docs/TELEMETRY.md row states ("buckets A …
// B", "buckets A ms to B ms"). TestHistogramBuckets checks only the
// histograms its drivers record; this covers those they do not
// (levee.fleet.round_trip.duration).
func TestEveryHistogramHasItsBuckets(t *testing.T) {
	inv := &inventory{got: map[string]instrument{}}
	buildEverything(t, inv)
	raw, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for n, in := range inv.got {
		if !strings.HasSuffix(in.kind, "Histogram") {
			continue
		}
		checked++
		if len(in.bounds) == 0 {
			t.Errorf("%s has OTel's default bucket boundaries", n)
			continue
		}
		if layout, ok := wantLayouts[n]; ok {
			if !slices.Equal(in.bounds, layout()) {
				t.Errorf("%s: boundaries %v, want its layout %v", n, in.bounds, layout())
			}
			continue
		}
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(n) + "`.*\\bbuckets ([0-9.]+)( ms)?(?: …| to) ([0-9.]+)( ms)?").FindStringSubmatch(string(raw))
		if row == nil {
			t.Errorf("%s: its docs/TELEMETRY.md row states no bucket range", n)
			continue
		}
		scale := 1.0
		if row[2] != "" {
			scale = 0.001
		}
		first, _ := strconv.ParseFloat(row[1], 64)
		last, _ := strconv.ParseFloat(row[3], 64)
		if in.bounds[0] != first*scale || in.bounds[len(in.bounds)-1] != last*scale {
			t.Errorf("%s: boundaries %v … %v, docs/TELEMETRY.md states %s%s to %s%s", n, in.bounds[0], in.bounds[len(in.bounds)-1], row[1], row[2], row[3], row[4])
		}
	}
	if checked < len(wantLayouts)+2 {
		t.Fatalf("checked %d histograms", checked)
	}
}

// promName is the name the OTel Prometheus exporter (default translation,
// docs/TELEMETRY.md "Naming scheme") gives an instrument: dots become
// underscores, unit s appends _seconds, unit 1 _ratio, a unit per second
// _per_second, braced units nothing, and counters get _total.
func promName(name string, in instrument) string {
	out := strings.ReplaceAll(name, ".", "_")
	switch {
	case in.unit == "s":
		out += "_seconds"
	case in.unit == "1":
		out += "_ratio"
	case strings.HasSuffix(in.unit, "/s"):
		out += "_per_second"
	}
	if strings.HasSuffix(in.kind, "Counter") && !strings.Contains(in.kind, "UpDown") {
		out += "_total"
	}
	return out
}

// promNames is every series name Levee's instruments are scraped as.
func promNames(t *testing.T) map[string]bool {
	t.Helper()
	inv := &inventory{got: map[string]instrument{}}
	buildEverything(t, inv)
	out := map[string]bool{}
	for n, in := range inv.got {
		p := promName(n, in)
		out[p] = true
		if strings.HasSuffix(in.kind, "Histogram") {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[p+s] = true
			}
		}
	}
	return out
}
