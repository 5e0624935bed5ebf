package telemetrytest_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// documentedAttrs reads the attributes column of docs/TELEMETRY.md's
// instrument tables: for each instrument, its attribute keys and, where
// the cell lists them (all in backquotes), the values each key may take.
// A nil value set means any value.
func documentedAttrs(t *testing.T) map[string]map[string]map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	// The shared outcomes and error classes of levee.handler.*.
	shared := map[string]map[string]bool{"outcome": {}, "class": {}}
	for _, m := range regexp.MustCompile("(?m)^\\| `(acked|nacked|canceled|deferred|dead_lettered)` \\|").FindAllStringSubmatch(doc, -1) {
		shared["outcome"][m[1]] = true
	}
	if m := regexp.MustCompile("Error classes are read through[^.]*:\\s*((?:`[a-z]+`[^`.]*)+)\\.").FindStringSubmatch(doc); m != nil {
		for _, c := range regexp.MustCompile("`([a-z]+)`").FindAllStringSubmatch(m[1], -1) {
			shared["class"][c[1]] = true
		}
		shared["class"]["other"] = true // "error classes outside the five shared ones become other"
	}
	if len(shared["outcome"]) != 5 || len(shared["class"]) != 6 {
		t.Fatalf("docs/TELEMETRY.md: shared outcomes %v and classes %v, want 5 and 5 + other", shared["outcome"], shared["class"])
	}
	backquoted := regexp.MustCompile("`([^`]+)`")
	out := map[string]map[string]map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		cells := splitRow(line)
		if len(cells) < 5 || !regexp.MustCompile("^(Int64|Float64)").MatchString(cells[1]) {
			continue
		}
		name := backquoted.FindStringSubmatch(cells[0])
		if name == nil || !strings.HasPrefix(name[1], "levee.") {
			continue
		}
		keys := map[string]map[string]bool{}
		for _, part := range splitTop(cells[3]) {
			key := strings.Trim(strings.Fields(part)[0], "`")
			if key == "none" {
				continue
			}
			var vals map[string]bool
			list := ""
			if i := strings.Index(part, "="); i >= 0 {
				list = strings.Split(part[i+1:], "(")[0]
				list = strings.ReplaceAll(list, `\|`, ",")
			} else if i := strings.Index(part, "("); i >= 0 {
				list = strings.TrimSuffix(part[i+1:], ")")
			}
			if list != "" {
				vals = map[string]bool{}
				for _, v := range strings.Split(list, ",") {
					v = strings.TrimSpace(v)
					m := backquoted.FindStringSubmatch(v)
					if m == nil || m[0] != v {
						vals = nil // a free-form value among them: any value
						break
					}
					vals[m[1]] = true
				}
			}
			if vals == nil && strings.HasPrefix(name[1], "levee.handler.") {
				vals = shared[key]
			}
			keys[key] = vals
		}
		out[name[1]] = keys
	}
	return out
}

// splitRow splits a Markdown table row into cells (an escaped \| is not a
// separator).
func splitRow(line string) []string {
	if !strings.HasPrefix(line, "| ") {
		return nil
	}
	line = strings.ReplaceAll(strings.Trim(line, "| "), `\|`, "\x00")
	var cells []string
	for _, c := range strings.Split(line, " | ") {
		cells = append(cells, strings.ReplaceAll(strings.TrimSpace(c), "\x00", `\|`))
	}
	return cells
}

// splitTop splits an attributes cell at the commas outside parentheses.
func splitTop(cell string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range cell {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, strings.TrimSpace(cell[start:i]))
				start = i + 1
			}
		}
	}
	return append(parts, strings.TrimSpace(cell[start:]))
}

// checkAttrsDocumented fails the test for every recorded point whose
// attribute keys, or whose values of a key with a documented set, are not
// what docs/TELEMETRY.md says; it returns how many points it checked.
func checkAttrsDocumented(t *testing.T, r *sdkmetric.ManualReader) int {
	t.Helper()
	docs := documentedAttrs(t)
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	checked := 0
	check := func(name string, set attribute.Set) {
		checked++
		want, ok := docs[name]
		if !ok {
			t.Errorf("%s: no row in docs/TELEMETRY.md", name)
			return
		}
		for _, kv := range set.ToSlice() {
			vals, ok := want[string(kv.Key)]
			switch {
			case !ok:
				t.Errorf("%s: attribute %s=%q is not documented (docs/TELEMETRY.md lists %v)", name, kv.Key, kv.Value.String(), keysOf(want))
			case vals != nil && !vals[kv.Value.String()]:
				t.Errorf("%s: %s=%q is not among the documented values %v", name, kv.Key, kv.Value.String(), keysOf(vals))
			}
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			default:
				t.Errorf("%s: aggregation %T not checked", m.Name, m.Data)
			}
		}
	}
	return checked
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
