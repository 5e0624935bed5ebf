package config_test

import (
	"strings"
	"testing"

	"github.com/levee-dev/levee/config"
)

// TestWarningMaxWaitInRejectMode: max_wait bounds a wait, and in reject
// mode no message waits (one without a free token is refused at once), so
// `mode: reject` with `max_wait` loaded silently while the max_wait did
// nothing. It is warned about now; max_wait in wait mode is not.
func TestWarningMaxWaitInRejectMode(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"handlers:\n  h:\n    ratelimit:\n      rate: 5/s\n      mode: reject\n      max_wait: 2s\n",
			"levee.yaml:6: handlers.h.ratelimit.max_wait: max_wait has no effect with mode: reject"},
		{"handlers:\n  h:\n    ratelimit: {rate: 5/s, max_wait: 2s}\n", ""},
		{"handlers:\n  h:\n    ratelimit: {rate: 5/s, mode: reject}\n", ""},
	} {
		cfg, err := config.Parse("levee.yaml", []byte(tc.yaml), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
		switch {
		case tc.want == "" && strings.Contains(got, "max_wait"):
			t.Errorf("%q: warned %q, want no max_wait warning", tc.yaml, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%q: warnings %q lack %q", tc.yaml, got, tc.want)
		}
	}
}

// TestWarningLatencyToleranceUnused: latency_tolerance scales the
// automatic latency target only; beside target_latency or ignore_latency
// it loaded silently and did nothing. It is warned about now.
func TestWarningLatencyToleranceUnused(t *testing.T) {
	for _, tc := range []struct{ adaptive, want string }{
		{"{min: 1/s, max: 10/s, target_latency: 50ms, latency_tolerance: 3}",
			"levee.yaml:3: handlers.h.ratelimit.adaptive.latency_tolerance: latency_tolerance applies only to the automatic latency target"},
		{"{min: 1/s, max: 10/s, ignore_latency: true, latency_tolerance: 3}", "handlers.h.ratelimit.adaptive.latency_tolerance: latency_tolerance applies only"},
		{"{min: 1/s, max: 10/s, latency_tolerance: 3}", ""},
		{"{min: 1/s, max: 10/s, target_latency: 50ms}", ""},
	} {
		y := "handlers:\n  h:\n    ratelimit: {adaptive: " + tc.adaptive + "}\n"
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
		switch {
		case tc.want == "" && strings.Contains(got, "latency_tolerance"):
			t.Errorf("%s: warned %q, want no latency_tolerance warning", tc.adaptive, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%s: warnings %q lack %q", tc.adaptive, got, tc.want)
		}
	}
}
