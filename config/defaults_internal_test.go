package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
)

// TestEveryKeyHasADefault fails when a section gains a key that
// `levee config check` would print as "unset": add its default to
// sectionDefaults.
func TestEveryKeyHasADefault(t *testing.T) {
	types := map[string]any{
		"tracing": tracing.Config{}, "dlq": dlq.Config{}, "breaker": breaker.Config{}, "breakers": breaker.Config{},
		"priority": priority.Config{}, "schedulers": priority.SchedulerConfig{}, "ratelimit": ratelimit.Config{},
		"batch": batch.Config{}, "store": dlqops.StoreConfig{}, "dedup": dedup.Config{}, "fleet": HandlerFleet{},
	}
	defaults := sectionDefaults()
	for key := range defaults {
		if _, ok := types[key]; !ok {
			t.Errorf("sectionDefaults has %q, which this test does not know: add its type", key)
		}
	}
	for key, v := range types {
		var paths []string
		leafPaths("", reflect.TypeOf(v), &paths)
		for _, p := range paths {
			if _, ok := defaults[key][p]; !ok {
				t.Errorf("%s.%s has no default in sectionDefaults", key, p)
			}
		}
	}
	for _, s := range DefaultSections() {
		if _, ok := types[s.Key]; !ok && !strings.Contains("timeout metrics recover", s.Key) {
			t.Errorf("section %q has no entry in sectionDefaults", s.Key)
		}
	}
}

func leafPaths(prefix string, t reflect.Type, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.NumField() == 0 {
		*out = append(*out, prefix)
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		leafPaths(p, f.Type, out)
	}
}

func TestSettingsSources(t *testing.T) {
	y := "store: {kind: redis, url: \"redis://u:hunter2@127.0.0.1:6379/0\"}\nhandlers:\n  h:\n    dlq: {retry: {max_attempts: \"${N}\"}}\n    timeout: ${T:-2s}\n"
	cfg, err := Parse("levee.yaml", []byte(y), func(k string) (string, bool) { return map[string]string{"N": "3"}[k], k == "N" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Setting{}
	for _, s := range cfg.Settings() {
		got[s.Path] = s
	}
	for _, want := range []Setting{
		{"handlers.h.dlq.retry.max_attempts", "3", "levee.yaml:4, env N"},
		{"handlers.h.dlq.retry.initial", "100ms", "default"},
		{"handlers.h.timeout", "2s", "levee.yaml:5, default of ${T:-...}"},
		{"store.url", "redis://u:xxxxx@127.0.0.1:6379/0", "levee.yaml:1"},
		{"store.timeout", "5s", "default"},
	} {
		if g := got[want.Path]; g != want {
			t.Errorf("got %+v, want %+v", g, want)
		}
	}
}

// TestSettingsAreEffective: a setting prints the value in effect, not a
// zero the file wrote or a default another key overrides.
func TestSettingsAreEffective(t *testing.T) {
	y := "handlers:\n" +
		"  h:\n" +
		"    breaker: {consecutive_failures: 0, drain: {window: 1s}}\n" + // 3
		"    fleet: {ratelimit: {rate: 5/s, burst: 0}, breaker: {failure_ratio: 30%}}\n" + // 4
		"  g:\n" +
		"    breaker: {failure_ratio: 50%}\n" + // 6
		"    ratelimit: {rate: 0}\n" + // 7
		"    tracing: {propagators: [baggage, tracecontext]}\n" // 8
	cfg, err := Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Setting{}
	for _, s := range cfg.Settings() {
		got[s.Path] = s
	}
	for _, want := range []Setting{
		{"handlers.h.breaker.consecutive_failures", `5 ("0" means the default)`, "levee.yaml:3"},
		{"handlers.h.breaker.drain.start", "10%", "default"},
		{"handlers.g.breaker.consecutive_failures", "off (another trip policy is set)", "default"},
		{"handlers.g.breaker.min_requests", "20", "default"},
		{"handlers.h.fleet.ratelimit.burst", `one lease (rate x lease) ("0" means the default)`, "levee.yaml:4"},
		{"handlers.h.fleet.breaker.min_requests", "20", "default"},
		{"handlers.h.fleet.breaker.drain.start", "", ""}, // no drain section: not shown
		// ratelimit rate: 0 is a pause, not the default: shown as written.
		{"handlers.g.ratelimit.rate", "0", "levee.yaml:7"},
		{"handlers.g.tracing.propagators", "[0]=baggage [1]=tracecontext", "levee.yaml:8"},
	} {
		if g := got[want.Path]; g.Value != want.Value || g.Source != want.Source {
			t.Errorf("%s: got %q from %q, want %q from %q", want.Path, g.Value, g.Source, want.Value, want.Source)
		}
	}
}

// TestBreakerLabelIsEffective: Describe names the trip policy and the
// drain's start the breaker uses.
func TestBreakerLabelIsEffective(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"{failure_ratio: 50%}", "failure_ratio=0.5 min_requests=20"},
		{"{consecutive_failures: 0, drain: {window: 1s}}", "consecutive_failures=5 drain=1s from 10%"},
		{"{consecutive_failures: 3, failure_ratio: 50%, min_requests: 10}", "consecutive_failures=3 failure_ratio=0.5 min_requests=10"},
	} {
		cfg, err := Parse("levee.yaml", []byte("handlers:\n  h:\n    breaker: "+tt.yaml+"\n"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cfg.Handler("h").Describe(), "1. breaker "+tt.want+"\n"; got != want {
			t.Errorf("%s: got %q, want %q", tt.yaml, got, want)
		}
	}
}

// TestAdaptiveSettingsAreEffective: `levee config check` printed
// "required unless ignore_latency" for an adaptive section's missing
// target_latency (it is automatic: latency_tolerance x the baseline, and
// the file is valid without it) and "none (no limit of its own)" for its
// missing rate (an adaptive limit starts at adaptive.max).
func TestAdaptiveSettingsAreEffective(t *testing.T) {
	y := "handlers:\n" +
		"  a:\n" +
		"    ratelimit: {adaptive: {min: 10/s, max: 200/s}}\n" +
		"  e:\n" +
		"    ratelimit: {rate: 50/s, adaptive: {min: 10/s, max: 200/s, ignore_latency: true}}\n" +
		"  p:\n" +
		"    ratelimit: {burst: 2}\n"
	cfg, err := Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Setting{}
	for _, s := range cfg.Settings() {
		got[s.Path] = s
	}
	for _, want := range []Setting{
		{"handlers.a.ratelimit.rate", "adaptive.max (200/s)", "default"},
		{"handlers.a.ratelimit.adaptive.target_latency", "automatic: latency_tolerance x the baseline (lowest recent window mean of successful calls) latency", "default"},
		{"handlers.e.ratelimit.rate", "50/s", "levee.yaml:5"},
		{"handlers.e.ratelimit.adaptive.target_latency", "off (ignore_latency)", "default"},
		{"handlers.p.ratelimit.rate", "none (no limit of its own)", "default"},
	} {
		if g := got[want.Path]; g.Value != want.Value || g.Source != want.Source {
			t.Errorf("%s: got %q from %q, want %q from %q", want.Path, g.Value, g.Source, want.Value, want.Source)
		}
	}
}
