package breaker_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/config"
)

func TestNewInvalid(t *testing.T) {
	tests := []struct {
		name string
		opt  breaker.Option
		key  string
	}{
		{"ratio above 1", breaker.WithFailureRatio(1.5, 20), "failure_ratio"},
		{"negative ratio", breaker.WithFailureRatio(-0.1, 20), "failure_ratio"},
		{"NaN ratio", breaker.WithFailureRatio(math.NaN(), 20), "failure_ratio"},
		{"min requests zero", breaker.WithFailureRatio(0.5, 0), "min_requests"},
		{"negative consecutive", breaker.WithConsecutiveFailures(-1), "consecutive_failures"},
		{"negative window", breaker.WithWindow(-time.Second), "window"},
		{"negative open_for", breaker.WithOpenFor(-time.Second), "open_for"},
		{"zero open_for", breaker.WithOpenFor(0), "open_for"},
		{"zero probes", breaker.WithHalfOpenProbes(0), "half_open_probes"},
		{"negative slow threshold", breaker.WithSlowCall(-time.Second, 0), "slow_call.threshold"},
		{"slow ratio above 1", breaker.WithSlowCall(time.Second, 2), "slow_call.ratio"},
		{"slow ratio without threshold", breaker.WithSlowCall(0, 0.5), "slow_call.threshold"},
		{"negative max hold", breaker.WithMaxHold(-time.Second), "max_hold"},
		{"drain window zero", breaker.WithDrain(0, 0.1, 1), "drain.window"},
		{"drain start over 100%", breaker.WithDrain(time.Second, 1.5, 1), "drain.start"},
		{"drain start zero", breaker.WithDrain(time.Second, 0, 1), "drain.start"},
		{"drain aggression zero", breaker.WithDrain(time.Second, 0.1, 0), "drain.aggression"},
		{"negative drain rate", breaker.WithDrainRate(-1), "drain.rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := breaker.New(tt.opt)
			if err == nil {
				_ = b.Close()
				t.Fatalf("got nil error, want one naming %s", tt.key)
			}
			if !errors.Is(err, breaker.ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.key+":") {
				t.Fatalf("got %q, want it to name %s", err, tt.key)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	const good = `
breaker:
  consecutive_failures: 5
  failure_ratio: 0.5
  min_requests: 20
  window: 10s
  open_for: 10s
  half_open_probes: 3
  slow_call: {threshold: 2s, ratio: 0.5}
  max_hold: 30s
  drain: {window: 30s, start: 10%, aggression: 1.0, rate: 100/s}
`
	var doc struct {
		Breaker breaker.Config `yaml:"breaker"`
	}
	d, err := config.Parse("levee.yaml", []byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	c := doc.Breaker
	want := breaker.Config{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, Window: 10 * time.Second,
		OpenFor: 10 * time.Second, HalfOpenProbes: 3, MaxHold: 30 * time.Second}
	if c.ConsecutiveFailures != want.ConsecutiveFailures || c.FailureRatio != want.FailureRatio || c.MinRequests != want.MinRequests ||
		c.Window != want.Window || c.OpenFor != want.OpenFor || c.HalfOpenProbes != want.HalfOpenProbes || c.MaxHold != want.MaxHold {
		t.Fatalf("got %+v", c)
	}
	if c.SlowCall == nil || *c.SlowCall != (breaker.SlowCallConfig{Threshold: 2 * time.Second, Ratio: 0.5}) {
		t.Fatalf("slow_call: got %+v", c.SlowCall)
	}
	if c.Drain == nil || *c.Drain != (breaker.DrainConfig{Window: 30 * time.Second, Start: 0.1, Aggression: 1, Rate: 100}) {
		t.Fatalf("drain: got %+v", c.Drain)
	}
	b, err := breaker.New(c.Options()...)
	if err != nil {
		t.Fatalf("New from config: %v", err)
	}
	defer b.Close()
	if got := b.Baseline(); got != 100 {
		t.Fatalf("baseline: got %v, want the configured 100/s", got)
	}

	bad := []struct {
		name, yaml, want string
	}{
		{"ratio above 1", "breaker:\n  failure_ratio: 1.5\n", "levee.yaml:2: breaker.failure_ratio:"},
		{"drain without window", "breaker:\n  open_for: 5s\n  drain:\n    start: 10%\n", "breaker.drain.window: must be positive"},
		{"slow ratio without threshold", "breaker:\n  slow_call:\n    ratio: 0.5\n", "breaker.slow_call.threshold:"},
		{"start over 100%", "breaker:\n  drain: {window: 10s, start: 150%}\n", "breaker.drain.start"},
		{"negative duration", "breaker:\n  open_for: -1s\n", "levee.yaml:2: breaker.open_for:"},
		{"unknown key", "breaker:\n  opn_for: 1s\n", "opn_for"},
		{"shared with settings", "breaker:\n  shared: gw\n  open_for: 1s\n", "breaker.shared: a shared breaker takes its settings from breakers.gw"},
		{"shared name with a newline", "breaker:\n  shared: \"g\\nw\"\n  open_for: 1s\n", `breaker.shared: a shared breaker takes its settings from breakers."g\nw"; remove the other keys`},
		{"zero probes explicit", "breaker:\n  half_open_probes: -1\n", "breaker.half_open_probes:"},
		{"huge probes", "breaker:\n  half_open_probes: 5000000000\n", "breaker.half_open_probes: must be between 1 and 4294967295"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var doc struct {
				Breaker breaker.Config `yaml:"breaker"`
			}
			d, err := config.Parse("levee.yaml", []byte(tt.yaml), nil)
			if err == nil {
				err = d.Decode(&doc)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigShared(t *testing.T) {
	if err := (breaker.Config{Shared: "gw"}).Validate(); err != nil {
		t.Fatalf("shared reference: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	// An empty section is valid and means the defaults.
	if err := (breaker.Config{}).Validate(); err != nil {
		t.Fatalf("empty config: %v", err)
	}
	if got := len((breaker.Config{}).Options()); got != 0 {
		t.Fatalf("empty config options: got %d, want 0", got)
	}
}

// TestTripsAfter: the consecutive-failure threshold a Config gives New,
// the default included, and 0 where it does not trip on consecutive
// failures.
func TestTripsAfter(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    breaker.Config
		want int
	}{
		{"no policy: the default", breaker.Config{}, breaker.DefaultConsecutiveFailures},
		{"consecutive", breaker.Config{ConsecutiveFailures: 3}, 3},
		{"ratio only", breaker.Config{FailureRatio: 0.5}, 0},
		{"ratio and consecutive", breaker.Config{FailureRatio: 0.5, ConsecutiveFailures: 7}, 7},
		{"slow calls only", breaker.Config{SlowCall: &breaker.SlowCallConfig{Threshold: time.Second, Ratio: 0.5}}, 0},
		{"shared", breaker.Config{Shared: "gateway"}, 0},
		{"invalid", breaker.Config{ConsecutiveFailures: -1}, 0},
	} {
		if got := tc.c.TripsAfter(); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestConfigEffective(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    breaker.Config
		want breaker.Config
	}{
		{"defaults", breaker.Config{},
			breaker.Config{ConsecutiveFailures: 5, MinRequests: 20, Window: 10 * time.Second, OpenFor: 10 * time.Second, HalfOpenProbes: 1}},
		{"ratio alone does not trip on a streak", breaker.Config{FailureRatio: 0.5},
			breaker.Config{FailureRatio: 0.5, MinRequests: 20, Window: 10 * time.Second, OpenFor: 10 * time.Second, HalfOpenProbes: 1}},
		{"drain start", breaker.Config{Drain: &breaker.DrainConfig{Window: time.Second}},
			breaker.Config{ConsecutiveFailures: 5, MinRequests: 20, Window: 10 * time.Second, OpenFor: 10 * time.Second, HalfOpenProbes: 1,
				Drain: &breaker.DrainConfig{Window: time.Second, Start: 0.1, Aggression: 1}}},
		{"shared unchanged", breaker.Config{Shared: "s"}, breaker.Config{Shared: "s"}},
		{"invalid unchanged", breaker.Config{ConsecutiveFailures: -1}, breaker.Config{ConsecutiveFailures: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.Effective()
			if got.Drain != nil && tt.want.Drain != nil {
				if *got.Drain != *tt.want.Drain {
					t.Errorf("drain: got %+v, want %+v", *got.Drain, *tt.want.Drain)
				}
				got.Drain, tt.want.Drain = nil, nil
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
