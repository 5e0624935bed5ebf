//go:build integration

package telemetrytest_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// controlMetric records the priority waits again on OTel's default
// boundaries: the check must fail on it, or it proves nothing.
const controlMetric = "telemetrytest_default_buckets_seconds"

// TestDashboardQuantilesAgainstPrometheus puts a known latency distribution
// through every Levee histogram (the drivers: handler and batch durations,
// batch sizes, breaker and drain waits, rate-limit and priority waits),
// exports it with the OTel Prometheus exporter, lets a real Prometheus
// scrape it, and runs every histogram_quantile query of
// docs/dashboards/levee.json against it. Each answer must give the true
// quantile of what the drivers measured within one bucket: off by at most
// the width of the bucket that holds the truth, and by at most a factor of
// 2.5 (the widest step of Levee's layouts). The same check run on the
// priority waits recorded with OTel's default boundaries must fail.
//
// The queries run as the dashboard has them, with $handler = .* and
// $__rate_interval = exactly the span between the scrape before the
// distribution and the scrape after it, so rate() sees only the
// distribution and does no extrapolation that would skew one bucket
// against another.
func TestDashboardQuantilesAgainstPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	control, err := mp.Meter("telemetrytest").Float64Histogram("telemetrytest.default_buckets", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	prom := startPrometheus(t, srv.Listener.Addr().String())
	ctx := context.Background()

	// Phase 1: one value per series, so every series exists before the
	// distribution and rate() has a sample to start from.
	seed := map[string]int{controlMetric: 1}
	for _, d := range drivers() {
		synctest.Test(t, func(t *testing.T) {
			for name, v := range d.run(t, mp, 1) {
				seed[name] += len(v)
			}
		})
	}
	control.Record(ctx, 0.001)
	waitForCounts(t, prom, seed)

	// Phase 2: the distributions.
	truth := map[string][]float64{}
	for _, d := range drivers() {
		synctest.Test(t, func(t *testing.T) {
			for name, v := range d.run(t, mp, samplesPerInstrument) {
				truth[name] = append(truth[name], v...)
			}
		})
	}
	truth[controlMetric] = truth["levee_priority_wait_duration_seconds"]
	for _, v := range truth[controlMetric] {
		control.Record(ctx, v)
	}
	final := map[string]int{}
	for name, v := range truth {
		final[name] = seed[name] + len(v)
	}
	waitForCounts(t, prom, final)

	targets := quantileTargets(t)
	if len(targets) < 8 {
		t.Fatalf("found %d quantile queries in the dashboard, want at least 8", len(targets))
	}
	covered := map[string]bool{}
	for _, tg := range targets {
		covered[tg.metric] = true
		got, want, bounds := evalQuantile(t, prom, tg, seed[tg.metric], final[tg.metric], truth[tg.metric])
		if err := withinOneBucket(got, want, bounds); err != nil {
			t.Errorf("panel %q: %s: %v", tg.panel, tg.expr, err)
		} else {
			t.Logf("panel %q: p%g of %s: Prometheus %.4g, true %.4g", tg.panel, tg.q*100, tg.metric, got, want)
		}
	}
	for name := range truth {
		if name != controlMetric && !covered[name] {
			t.Errorf("%s is driven but no dashboard panel shows a quantile of it", name)
		}
	}

	// The control: the priority wait (p99 about 0.2 s) on OTel's
	// default boundaries reads near 5 s.
	tg := quantileTarget{panel: "control", q: 0.99, metric: controlMetric,
		expr: `histogram_quantile(0.99, sum by (le) (rate(` + controlMetric + `_bucket[$__rate_interval])))`}
	got, want, bounds := evalQuantile(t, prom, tg, seed[controlMetric], final[controlMetric], truth[controlMetric])
	if err := withinOneBucket(got, want, bounds); err == nil {
		t.Errorf("default boundaries %v pass the check (Prometheus %.4g, true %.4g): the check proves nothing", bounds, got, want)
	} else {
		t.Logf("control on default boundaries fails as it should: %v", err)
	}
}

// withinOneBucket reports whether got, Prometheus's estimate of a quantile
// whose true value is want, is within one bucket of bounds (the finite
// upper bounds): at most the width of the bucket holding want away, and at
// most a factor 2.5 off.
func withinOneBucket(got, want float64, bounds []float64) error {
	lo, hi := 0.0, math.Inf(1)
	for _, b := range bounds {
		if want <= b {
			hi = b
			break
		}
		lo = b
	}
	switch {
	case math.IsInf(hi, 1):
		return fmt.Errorf("true quantile %.4g is above the last bucket %v", want, bounds[len(bounds)-1])
	case math.IsNaN(got) || math.Abs(got-want) > hi-lo:
		return fmt.Errorf("Prometheus says %.4g, true %.4g: more than the bucket (%g, %g] away", got, want, lo, hi)
	case want > 0 && (got/want > 2.5 || want/got > 2.5):
		return fmt.Errorf("Prometheus says %.4g, true %.4g: more than a factor 2.5 off (bucket (%g, %g])", got, want, lo, hi)
	}
	return nil
}

// trueQuantile is the smallest value with at least q of the values at or
// below it: the value histogram_quantile estimates.
func trueQuantile(values []float64, q float64) float64 {
	s := slices.Clone(values)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

type quantileTarget struct {
	panel, expr, metric string
	q                   float64
}

// quantileTargets returns every histogram_quantile query of the dashboard.
func quantileTargets(t *testing.T) []quantileTarget {
	t.Helper()
	dash := readDashboard(t)
	quant := regexp.MustCompile(`^histogram_quantile\(([0-9.]+),`)
	bucket := regexp.MustCompile(`(levee_[a-z_]+)_bucket`)
	var out []quantileTarget
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			m := quant.FindStringSubmatch(tg.Expr)
			if m == nil {
				continue
			}
			q, err := strconv.ParseFloat(m[1], 64)
			b := bucket.FindStringSubmatch(tg.Expr)
			if err != nil || b == nil {
				t.Fatalf("panel %q: cannot read %s", p.Title, tg.Expr)
			}
			out = append(out, quantileTarget{panel: p.Title, expr: tg.Expr, metric: b[1], q: q})
		}
	}
	return out
}

// evalQuantile runs tg's query over exactly the scrapes that saw the
// distribution and returns Prometheus's answer, the true quantile and the
// bucket bounds Prometheus holds for the metric.
func evalQuantile(t *testing.T, prom *promServer, tg quantileTarget, seed, final int, values []float64) (got, want float64, bounds []float64) {
	t.Helper()
	ctx := context.Background()
	from, to := scrapeSpan(t, prom, tg.metric, seed, final)
	expr := strings.NewReplacer(`$handler`, `.*`,
		`$__rate_interval`, fmt.Sprintf("%dms", to.Sub(from).Milliseconds()+1)).Replace(tg.expr)
	res, err := prom.query(ctx, expr, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Result) != 1 {
		t.Fatalf("%s: %d series, want 1: %+v", expr, len(res.Result), res.Result)
	}
	got, err = strconv.ParseFloat(fmt.Sprint(res.Result[0].Value[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	les, err := prom.query(ctx, "count by (le) ("+tg.metric+"_bucket)", to)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range les.Result {
		if b, err := strconv.ParseFloat(s.Metric["le"], 64); err == nil && !math.IsInf(b, 1) {
			bounds = append(bounds, b)
		}
	}
	slices.Sort(bounds)
	return got, trueQuantile(values, tg.q), bounds
}

// scrapeSpan returns the time of the last scrape of metric's count that
// saw seed observations and of the first that saw final.
func scrapeSpan(t *testing.T, prom *promServer, metric string, seed, final int) (from, to time.Time) {
	t.Helper()
	raw, err := prom.query(context.Background(), metric+"_count[10m]", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Result) != 1 {
		t.Fatalf("%s_count: %d series, want 1", metric, len(raw.Result))
	}
	for _, pt := range raw.Result[0].Values {
		ts, _ := pt[0].(float64)
		v, _ := strconv.ParseFloat(fmt.Sprint(pt[1]), 64)
		at := time.UnixMilli(int64(math.Round(ts * 1000)))
		switch {
		case int(v) == seed:
			from = at
		case int(v) == final && to.IsZero():
			to = at
		}
	}
	if from.IsZero() || to.IsZero() {
		t.Fatalf("%s_count: no scrape saw %d then %d: %v", metric, seed, final, raw.Result[0].Values)
	}
	return from, to
}

// waitForCounts waits until Prometheus has scraped every metric's count at
// its wanted value.
func waitForCounts(t *testing.T, prom *promServer, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var missing []string
		for name, n := range want {
			res, err := prom.query(context.Background(), "sum("+name+"_count)", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Result) != 1 || fmt.Sprint(res.Result[0].Value[1]) != strconv.Itoa(n) {
				missing = append(missing, fmt.Sprintf("%s=%d (have %v)", name, n, res.Result))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape within 30s: %s", strings.Join(missing, ", "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
