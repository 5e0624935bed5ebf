package tracing_test

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/levee-dev/levee/tracing"
)

// TestDashboardNamesMatchPrometheusExporter records this package's
// instruments through the OTel Prometheus exporter (into a private
// registry) and checks that every levee_handler_* and levee_tracing_*
// series the Grafana dashboard queries is exported under that name.
func TestDashboardNamesMatchPrometheusExporter(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(t.Context()) })
	r := newRecorded(t)
	tr, err := tracing.New(tracing.WithTracerProvider(r.tp), tracing.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	m, err := tracing.NewMetrics(tracing.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	h := tr.Middleware(m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("x") }))
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, "garbage")
	_, _ = h(msg)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		exported[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			exported[name+suffix] = true
		}
	}

	raw, err := os.ReadFile("../docs/dashboards/levee.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	series := regexp.MustCompile(`levee_[a-z_]+`)
	checked := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range series.FindAllString(tg.Expr, -1) {
				if !strings.HasPrefix(name, "levee_handler_") && !strings.HasPrefix(name, "levee_tracing_") {
					continue // other packages' instruments
				}
				checked++
				if !exported[name] {
					t.Errorf("panel %q queries %s, which the exporter does not produce (have %v)", p.Title, name, keys(exported))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("dashboard queries no levee_handler_* series")
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, "levee_") && !strings.HasSuffix(k, "_bucket") && !strings.HasSuffix(k, "_sum") && !strings.HasSuffix(k, "_count") {
			out = append(out, k)
		}
	}
	return out
}
