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
