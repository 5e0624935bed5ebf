package priority_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/priority"
)

type fileSections struct {
	Schedulers map[string]priority.SchedulerConfig `yaml:"schedulers"`
	Handlers   map[string]struct {
		Priority *priority.Config `yaml:"priority"`
	} `yaml:"handlers"`
}

func decode(t *testing.T, src string) (fileSections, error) {
	t.Helper()
	doc, err := config.Parse("levee.yaml", []byte(src), nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var f fileSections
	return f, doc.Decode(&f)
}

func TestConfigDecode(t *testing.T) {
	f, err := decode(t, `
schedulers:
  shared: {slots: 4, aging: 250ms, max_waiting: 100, max_wait: 30s, max_hold: 20s, default_priority: 1, retry_after: 2s}
  other: {}
handlers:
  payments:
    priority: {scheduler: shared, default_priority: 5}
`)
	if err != nil {
		t.Fatal(err)
	}
	sc := f.Schedulers["shared"]
	want := priority.SchedulerConfig{Slots: 4, Aging: 250 * time.Millisecond, MaxWaiting: 100, MaxWait: 30 * time.Second,
		MaxHold: 20 * time.Second, DefaultPriority: 1, RetryAfter: 2 * time.Second}
	if sc != want {
		t.Fatalf("got %+v, want %+v", sc, want)
	}
	s, err := priority.NewScheduler(append(sc.Options(), priority.WithName("shared"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Slots != 4 || st.Name != "shared" {
		t.Errorf("stats: got slots=%d name=%q, want 4 and shared", st.Slots, st.Name)
	}
	if _, err := priority.NewScheduler(f.Schedulers["other"].Options()...); err != nil {
		t.Errorf("empty section: %v", err)
	}
	hc := f.Handlers["payments"].Priority
	if hc == nil || hc.Scheduler != "shared" || hc.DefaultPriority == nil || *hc.DefaultPriority != 5 {
		t.Fatalf("handler section: got %+v", hc)
	}
	mw, err := s.HandlerMiddleware(hc.Options()...)
	if err != nil || mw == nil {
		t.Fatalf("HandlerMiddleware: %v", err)
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"slots", "schedulers: {s: {slots: -1}}", "levee.yaml:1: schedulers.s.slots"},
		{"aging", "schedulers:\n  s: {aging: -1s}", "schedulers.s.aging"},
		{"max_waiting", "schedulers:\n  s:\n    max_waiting: -5", "levee.yaml:3: schedulers.s.max_waiting"},
		{"default_priority", "schedulers:\n  s:\n    default_priority: 12", "schedulers.s.default_priority"},
		{"unknown key", "schedulers:\n  s: {slot: 3}", "schedulers.s.slot"},
		{"handler scheduler missing", "handlers:\n  h:\n    priority: {default_priority: 3}", "handlers.h.priority.scheduler"},
		{"handler default_priority", "handlers:\n  h:\n    priority: {scheduler: s, default_priority: -1}", "handlers.h.priority.default_priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, config.ErrInvalidConfig) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
