package config_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

type discard struct{}

func (discard) Publish(string, ...*message.Message) error { return nil }
func (discard) Close() error                              { return nil }

func newErr[T io.Closer](v T, err error) error {
	if err == nil {
		_ = v.Close()
	}
	return err
}

// TestZeroAgreesWithTheAPI checks that an explicit zero in YAML is an
// error wherever the Go option rejects it, instead of the default.
func TestZeroAgreesWithTheAPI(t *testing.T) {
	tests := []struct {
		name, yaml, want string
		api              func() error // nil: the option gives zero another meaning
	}{
		{"max_attempts", "handlers:\n  h:\n    dlq: {retry: {max_attempts: 0}}\n", "levee.yaml:3: handlers.h.dlq.retry.max_attempts:",
			func() error { _, err := dlq.New(discard{}, dlq.WithMaxAttempts(0)); return err }},
		{"initial", "handlers:\n  h:\n    dlq: {retry: {initial: 0s}}\n", "handlers.h.dlq.retry.initial:",
			func() error {
				b := dlq.DefaultBackoff()
				b.Initial = 0
				_, err := dlq.New(discard{}, dlq.WithBackoff(b))
				return err
			}},
		{"max_error_length", "handlers:\n  h:\n    dlq: {max_error_length: 0}\n", "handlers.h.dlq.max_error_length:",
			func() error { _, err := dlq.New(discard{}, dlq.WithMaxErrorLength(0)); return err }},
		{"attempt_ttl", "handlers:\n  h:\n    dlq: {attempt_ttl: 0s}\n", "handlers.h.dlq.attempt_ttl:",
			func() error { _, err := dlq.New(discard{}, dlq.WithAttemptTTL(0)); return err }},
		{"attempt_table_size", "handlers:\n  h:\n    dlq: {attempt_table_size: 0}\n", "handlers.h.dlq.attempt_table_size:", nil},
		{"attempt_table_ttl", "handlers:\n  h:\n    dlq: {attempt_table_ttl: 0s}\n", "handlers.h.dlq.attempt_table_ttl:",
			func() error { _, err := dlq.New(discard{}, dlq.WithAttemptTableTTL(0)); return err }},
		{"slots", "schedulers:\n  s: {slots: 0}\n", "levee.yaml:2: schedulers.s.slots:",
			func() error { return newErr(priority.NewScheduler(priority.WithSlots(0))) }},
		{"empty slots", "schedulers:\n  s: {slots: }\n", "schedulers.s.slots: is empty",
			func() error { return newErr(priority.NewScheduler(priority.WithSlots(0))) }},
		{"aging", "schedulers:\n  s: {aging: 0s}\n", "schedulers.s.aging:", nil},
		{"max_waiting", "schedulers:\n  s: {max_waiting: 0}\n", "schedulers.s.max_waiting:", nil},
		{"retry_after", "schedulers:\n  s: {retry_after: 0s}\n", "schedulers.s.retry_after:", nil},
		{"open_for", "breakers:\n  b: {open_for: 0s}\n", "breakers.b.open_for:",
			func() error { return newErr(breaker.New(breaker.WithOpenFor(0))) }},
		{"window", "handlers:\n  h:\n    breaker: {window: 0s}\n", "handlers.h.breaker.window:",
			func() error { return newErr(breaker.New(breaker.WithWindow(0))) }},
		{"min_requests", "handlers:\n  h:\n    breaker: {failure_ratio: 50%, min_requests: 0}\n", "handlers.h.breaker.min_requests:",
			func() error { return newErr(breaker.New(breaker.WithFailureRatio(0.5, 0))) }},
		{"half_open_probes", "handlers:\n  h:\n    breaker: {half_open_probes: 0}\n", "handlers.h.breaker.half_open_probes:",
			func() error { return newErr(breaker.New(breaker.WithHalfOpenProbes(0))) }},
		{"max_keys", "handlers:\n  h:\n    ratelimit: {key: {metadata: k}, per_key: {rate: 1/s, max_keys: 0}}\n", "handlers.h.ratelimit.per_key.max_keys:",
			func() error {
				return newErr(ratelimit.New(ratelimit.WithKeyMetadata("k"), ratelimit.WithPerKey(1, 1), ratelimit.WithMaxKeys(0)))
			}},
		{"dedup lease", "handlers:\n  h:\n    dedup: {lease: 0}\n", "levee.yaml:3: handlers.h.dedup.lease:",
			func() error { _, err := dedup.New(dedup.WithLease(0)); return err }},
		{"dedup window", "handlers:\n  h:\n    dedup: {window: 0s}\n", "handlers.h.dedup.window:",
			func() error { _, err := dedup.New(dedup.WithWindow(0)); return err }},
		{"dedup busy_retry", "handlers:\n  h:\n    dedup: {busy_retry: 0}\n", "handlers.h.dedup.busy_retry:",
			func() error { _, err := dedup.New(dedup.WithBusyRetry(0)); return err }},
		{"dedup store_timeout", "handlers:\n  h:\n    dedup: {store_timeout: 0}\n", "handlers.h.dedup.store_timeout:",
			func() error { _, err := dedup.New(dedup.WithStoreTimeout(0)); return err }},
		{"dedup max_keys", "handlers:\n  h:\n    dedup: {max_keys: 0}\n", "handlers.h.dedup.max_keys:",
			func() error { _, err := dedup.NewMemStore(0); return err }},
		// breaker.Fleet reads a zero field as its default; the local
		// breaker section rejects these zeros (or reads failure_ratio: 0
		// as off), and so does the fleet's, instead of a silent default.
		{"fleet failure_ratio", "handlers:\n  h:\n    fleet: {breaker: {failure_ratio: 0}}\n", "levee.yaml:3: handlers.h.fleet.breaker.failure_ratio:", nil},
		{"fleet min_requests", "handlers:\n  h:\n    fleet: {breaker: {min_requests: 0}}\n", "handlers.h.fleet.breaker.min_requests:",
			func() error { return newErr(breaker.New(breaker.WithFailureRatio(0.5, 0))) }},
		{"fleet window", "handlers:\n  h:\n    fleet: {breaker: {window: 0s}}\n", "handlers.h.fleet.breaker.window:",
			func() error { return newErr(breaker.New(breaker.WithWindow(0))) }},
		{"fleet open_for", "handlers:\n  h:\n    fleet: {breaker: {open_for: 0s}}\n", "handlers.h.fleet.breaker.open_for:",
			func() error { return newErr(breaker.New(breaker.WithOpenFor(0))) }},
		{"fleet report_every", "handlers:\n  h:\n    fleet: {breaker: {report_every: 0s}}\n", "handlers.h.fleet.breaker.report_every:", nil},
		{"fleet probe_ttl", "handlers:\n  h:\n    fleet: {breaker: {probe_ttl: 0s}}\n", "handlers.h.fleet.breaker.probe_ttl:", nil},
		{"fleet drain start", "handlers:\n  h:\n    fleet: {breaker: {drain: {window: 1s, start: 0%}}}\n", "handlers.h.fleet.breaker.drain.start:",
			func() error { return newErr(breaker.New(breaker.WithDrain(time.Second, 0, 1))) }},
		{"fleet drain window", "handlers:\n  h:\n    fleet: {breaker: {drain: {window: 0s}}}\n", "handlers.h.fleet.breaker.drain.window:",
			func() error { return newErr(breaker.New(breaker.WithDrain(0, 0.1, 1))) }},
		{"fleet drain without a window", "handlers:\n  h:\n    fleet: {breaker: {drain: {start: 10%}}}\n", "levee.yaml:3: handlers.h.fleet.breaker.drain.window: must be positive when a drain is configured",
			func() error { return newErr(breaker.New(breaker.WithDrain(0, 0.1, 1))) }},
		{"fleet store_timeout", "handlers:\n  h:\n    fleet: {store_timeout: 0s, breaker: {}}\n", "handlers.h.fleet.store_timeout:", nil},
		{"fleet lease", "handlers:\n  h:\n    fleet: {ratelimit: {rate: 1/s, lease: 0s}}\n", "handlers.h.fleet.ratelimit.lease:", nil},
		{"fleet rate", "handlers:\n  h:\n    fleet: {ratelimit: {rate: 0}}\n", "handlers.h.fleet.ratelimit.rate:", nil},
		{"fleet per_key rate", "handlers:\n  h:\n    fleet: {ratelimit: {rate: 1/s, per_key: {rate: 0, metadata: k}}}\n", "handlers.h.fleet.ratelimit.per_key.rate:", nil},
		{"fleet per_key max_keys", "handlers:\n  h:\n    fleet: {ratelimit: {rate: 1/s, per_key: {rate: 1/s, metadata: k, max_keys: 0}}}\n", "handlers.h.fleet.ratelimit.per_key.max_keys:",
			func() error {
				return newErr(ratelimit.New(ratelimit.WithKeyMetadata("k"), ratelimit.WithPerKey(1, 1), ratelimit.WithMaxKeys(0)))
			}},
		// batch.WithMaxHold(0) is no bound; in YAML, as in the dlq,
		// breaker, ratelimit and priority sections, the default is the
		// transport's bound (Deps.MaxHold), and a zero would lift it.
		{"batch max_hold", "handlers:\n  h:\n    batch: {max_hold: 0s}\n", "levee.yaml:3: handlers.h.batch.max_hold:", nil},
		{"dlq max_hold", "handlers:\n  h:\n    dlq: {max_hold: 0s}\n", "levee.yaml:3: handlers.h.dlq.max_hold:", nil},
		// ratelimit.Adaptive reads every zero field as its default
		// (max_error_rate 0 as 5%, interval 0 as 250ms).
		{"adaptive target_latency", "handlers:\n  h:\n    ratelimit: {rate: 1/s, adaptive: {min: 1/s, max: 2/s, target_latency: 0s}}\n", "levee.yaml:3: handlers.h.ratelimit.adaptive.target_latency:", nil},
		{"adaptive latency_tolerance", "handlers:\n  h:\n    ratelimit: {rate: 1/s, adaptive: {min: 1/s, max: 2/s, latency_tolerance: 0}}\n", "levee.yaml:3: handlers.h.ratelimit.adaptive.latency_tolerance:", nil},
		{"adaptive max_error_rate", "handlers:\n  h:\n    ratelimit: {rate: 1/s, adaptive: {min: 1/s, max: 2/s, max_error_rate: 0%}}\n", "levee.yaml:3: handlers.h.ratelimit.adaptive.max_error_rate:", nil},
		{"adaptive interval", "handlers:\n  h:\n    ratelimit: {rate: 1/s, adaptive: {min: 1/s, max: 2/s, interval: 0s}}\n", "levee.yaml:3: handlers.h.ratelimit.adaptive.interval:", nil},
		{"adaptive increase", "handlers:\n  h:\n    ratelimit: {rate: 1/s, adaptive: {min: 1/s, max: 2/s, increase: 0/s}}\n", "levee.yaml:3: handlers.h.ratelimit.adaptive.increase:", nil},
		{"adaptive decrease", "handlers:\n  h:\n    ratelimit: {rate: 1/s, adaptive: {min: 1/s, max: 2/s, decrease: 0}}\n", "levee.yaml:3: handlers.h.ratelimit.adaptive.decrease:", nil},
		{"adaptive min_samples", "handlers:\n  h:\n    ratelimit: {rate: 1/s, adaptive: {min: 1/s, max: 2/s, min_samples: 0}}\n", "levee.yaml:3: handlers.h.ratelimit.adaptive.min_samples:", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("YAML: got %v, want an ErrInvalidConfig containing %q", err, tt.want)
			}
			if tt.api != nil {
				if apiErr := tt.api(); apiErr == nil {
					t.Fatalf("the Go option accepts zero, but YAML rejects it: they disagree")
				}
			}
		})
	}
}

func TestPercentagesAndPlainNumbers(t *testing.T) {
	for _, v := range []string{"50%", "0.5", `"${RATIO:-50%}"`} {
		cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  h:\n    breaker: {failure_ratio: "+v+", min_requests: 10, slow_call: {threshold: 1s, ratio: "+v+"}}\n"), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if d := cfg.Handler("h").Describe(); !strings.Contains(d, "failure_ratio=0.5") || !strings.Contains(d, "slow_call=1s/0.5") {
			t.Fatalf("%s: got %q, want failure_ratio=0.5 and slow_call=1s/0.5", v, d)
		}
	}
	_, err := config.Parse("levee.yaml", []byte("handlers:\n  h:\n    breaker: {failure_ratio: 150%}\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("150%%: got %v, want out of range", err)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	y := "handlers:\n" +
		"  a:\n" +
		"    timout: 1s\n" + // 3: misspelled key
		"    priority: {scheduler: gatway}\n" + // 4: misspelled reference
		"  b:\n" +
		"    dlq: {retry: {max_attempts: 0, initial: soon}}\n" + // 6: two problems on one line
		"schedulers:\n" +
		"  gateway: {slots: 0}\n" + // 8
		"breakrs: {}\n" // 9: misspelled top-level key
	_, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`levee.yaml:3: handlers.a.timout: unknown key "timout"; did you mean "timeout"?`,
		`levee.yaml:4: handlers.a.priority.scheduler: "gatway" is not defined in the schedulers section; did you mean "gateway"? (defined: gateway)`,
		`levee.yaml:6: handlers.b.dlq.retry.max_attempts: "0" is not allowed`,
		`levee.yaml:6: handlers.b.dlq.retry.initial: "soon" is not a duration`,
		`levee.yaml:8: schedulers.gateway.slots: "0" is not allowed`,
		`levee.yaml:9: breakrs: unknown key "breakrs"; did you mean "breakers"?`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d:\n got  %s\n want %s...", i, lines[i], w)
		}
	}
	if !errors.Is(err, config.ErrInvalidConfig) {
		t.Fatal("does not wrap ErrInvalidConfig")
	}
}

func TestCheckDeadline(t *testing.T) {
	y := "schedulers:\n  s: {max_wait: 40s}\nhandlers:\n  h:\n    ratelimit: {rate: 5/s, max_wait: 10s}\n    dlq: {max_hold: 1m}\n    batch: {max_wait: 31s}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckDeadline(30 * time.Second)
	want := "levee.yaml:2: schedulers.s.max_wait: 40s is longer than the transport's ack deadline (30s)"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n") != 2 {
		t.Fatalf("got %v, want 3 problems starting with %q", err, want)
	}
	if err := cfg.CheckDeadline(2 * time.Minute); err != nil {
		t.Fatalf("within the deadline: %v", err)
	}
	if _, err := config.Build(cfg, config.Deps{Publisher: discard{}, MaxHold: 30 * time.Second}); err == nil {
		t.Fatal("Build accepted holds above Deps.MaxHold")
	}
}

// A handler timeout longer than the ack deadline lets the broker redeliver
// a message whose attempt still runs: a duplicate runs beside it. It is
// refused like a hold; one within the deadline is not.
func TestCheckDeadlineTimeout(t *testing.T) {
	y := "handlers:\n  slow:\n    timeout: 5s\n  quick:\n    timeout: 500ms\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckDeadline(time.Second)
	want := "levee.yaml:3: handlers.slow.timeout: 5s is longer than the transport's ack deadline (1s): the broker would redeliver a message whose attempt still runs"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "quick") {
		t.Fatalf("got %v, want one problem starting with %q", err, want)
	}
	if err := cfg.CheckDeadline(5 * time.Second); err != nil {
		t.Fatalf("within the deadline: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	y := "handlers:\n  h:\n    tracing: {}\n    metrics: true\n    ratelimit: {rate: \"${R:-0}\"}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
	for _, w := range []string{
		"levee.yaml:3: handlers.h.tracing: tracing is on but no TracerProvider",
		"levee.yaml:4: handlers.h.metrics: metrics is on but no MeterProvider",
		"levee.yaml:5: handlers.h.ratelimit.rate: rate 0 pauses the handler",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("warnings %q lack %q", got, w)
		}
	}
	if d := cfg.Describe(); !strings.Contains(d, "rate=0/s (paused: admits nothing)") {
		t.Errorf("Describe %q does not show the pause", d)
	}
}

// A named scheduler or breaker no handler refers to does nothing: the
// handler meant to use it runs without it. It is warned about with the
// line of its definition and how to refer to it; one in use is not.
func TestWarningsUnusedShared(t *testing.T) {
	y := "schedulers:\n  gateway: {slots: 2}\n  used: {slots: 2}\nbreakers:\n  gw: {consecutive_failures: 3}\nhandlers:\n  h:\n    priority: {scheduler: used}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
	for _, w := range []string{
		"levee.yaml:2: schedulers.gateway: no handler refers to it, so it does nothing; a handler uses it with `priority: {scheduler: gateway}`",
		"levee.yaml:5: breakers.gw: no handler refers to it, so it does nothing; a handler uses it with `breaker: {shared: gw}`",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("warnings %q lack %q", got, w)
		}
	}
	if strings.Contains(got, "schedulers.used") {
		t.Errorf("warnings %q name the scheduler h uses", got)
	}
}

// An empty file (or one of comments only, or one whose sections are all
// empty maps) configures nothing; `levee config check` said "ok" to it.
// It is warned about; a file with any section Levee reads is not.
func TestWarningsEmptyFile(t *testing.T) {
	const want = "levee.yaml: the file configures nothing"
	for _, y := range []string{"", "# only a comment\n", "handlers: {}\n", "---\n"} {
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatalf("%q: %v", y, err)
		}
		if got := strings.Join(cfg.Warnings(config.Deps{}), "\n"); !strings.Contains(got, want) {
			t.Errorf("%q: warnings %q lack %q", y, got, want)
		}
	}
	for _, y := range []string{
		"handlers:\n  h:\n    recover: true\n",
		"console:\n  tokens: [{name: ci, token: 0123456789abcdefgh, role: viewer}]\n",
		"transport:\n  kind: gochannel\n",
		"store:\n  kind: memory\n",
	} {
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatalf("%q: %v", y, err)
		}
		if got := strings.Join(cfg.Warnings(config.Deps{}), "\n"); strings.Contains(got, want) {
			t.Errorf("%q: warned as empty: %q", y, got)
		}
	}
}

// A per-key rate of 0 pauses every keyed message, an override's rate of 0
// its key's: both are legal and warned about, like the handler's rate 0.
func TestWarningsPerKeyPause(t *testing.T) {
	y := "handlers:\n  h:\n    ratelimit:\n      key: {metadata: k}\n      per_key:\n        rate: 0\n        overrides: {vip: {rate: 5/s}, blocked: {rate: 0}}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
	for _, w := range []string{
		"levee.yaml:6: handlers.h.ratelimit.per_key.rate: rate 0 pauses every key",
		`handlers.h.ratelimit.per_key.overrides.blocked.rate: rate 0 pauses key "blocked"`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("warnings %q lack %q", got, w)
		}
	}
	if strings.Contains(got, "vip") {
		t.Errorf("warnings %q name the vip key, whose rate is 5/s", got)
	}
}

// TestWarningAloneInFlight: a handler whose breaker trips on consecutive
// failures at or above its dlq's max attempts (the defaults, 5 and 5) is
// warned about; a threshold below max attempts, a failure-ratio policy or
// a shared breaker is not.
func TestWarningAloneInFlight(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string // "" for no warning
	}{
		{"handlers:\n  h:\n    dlq: {}\n    breaker: {}\n",
			"levee.yaml:4: handlers.h.breaker: the breaker trips after 5 consecutive failures and the dlq allows 5 attempts"},
		{"handlers:\n  h:\n    dlq: {retry: {max_attempts: 3}}\n    breaker: {consecutive_failures: 4}\n",
			"levee.yaml:4: handlers.h.breaker: the breaker trips after 4 consecutive failures and the dlq allows 3 attempts"},
		{"handlers:\n  h:\n    dlq: {}\n    breaker: {consecutive_failures: 3}\n", ""},
		{"handlers:\n  h:\n    dlq: {retry: {max_attempts: 8}}\n    breaker: {}\n", ""},
		{"handlers:\n  h:\n    dlq: {}\n    breaker: {failure_ratio: 50%}\n", ""},
		{"breakers:\n  b: {}\nhandlers:\n  h:\n    dlq: {}\n    breaker: {shared: b}\n", ""},
		{"handlers:\n  h:\n    breaker: {}\n", ""},
	} {
		cfg, err := config.Parse("levee.yaml", []byte(tc.yaml), nil, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
		switch {
		case tc.want == "" && strings.Contains(got, "consecutive failures"):
			t.Errorf("%q: unexpected warning %q", tc.yaml, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%q: warnings %q lack %q", tc.yaml, got, tc.want)
		}
	}
}

// TestSectionValidateReportsEveryProblem: a section whose Validate finds
// several problems reports each at its own key and line, not the first
// alone.
func TestSectionValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"dedup", "handlers:\n  h:\n    dedup:\n      store: disk\n      key: {json_pointer: a}\n      lease: 1s\n",
			[]string{"levee.yaml:4: handlers.h.dedup.store:", "levee.yaml:5: handlers.h.dedup.key.json_pointer:"}},
		{"dedup shared max_keys", "handlers:\n  h:\n    dedup:\n      key: {metadata: a, json_pointer: /a}\n      store: shared\n      max_keys: 5\n",
			[]string{"levee.yaml:4: handlers.h.dedup.key: ", "levee.yaml:6: handlers.h.dedup.max_keys: "}},
		{"batch", "handlers:\n  h:\n    batch:\n      max_size: 0\n      max_in_flight: -1\n",
			[]string{"levee.yaml:4: handlers.h.batch.max_size: must be positive", "levee.yaml:5: handlers.h.batch.max_in_flight: must be positive"}},
		{"fleet", "handlers:\n  h:\n    fleet:\n      on_store_error: maybe\n      ratelimit: {rate: 1/s, per_key: {rate: 1/s}}\n      breaker:\n        drain: {start: 10%}\n",
			[]string{"levee.yaml:4: handlers.h.fleet.on_store_error:", "levee.yaml:5: handlers.h.fleet.ratelimit.per_key.metadata: is required",
				"levee.yaml:7: handlers.h.fleet.breaker.drain.window: must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
			if err == nil || !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("got %v, want an ErrInvalidConfig", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got:\n%v\nwant a problem starting %q", err, w)
				}
			}
		})
	}
}

// A dedup lease no longer than the handler's timeout lets a duplicate run
// beside an attempt that is still within its timeout (docs/DEDUP.md, the
// lease must cover the handler): valid, and warned about. Before, only a
// lease not above Deps.MaxHold was logged, at build time. So does, on a
// batch handler without a timeout, a lease not above the batch's max_wait
// (the claim lapses while the message waits in its batch): before, no
// warning.
func TestWarningsLeaseWithinTheTimeout(t *testing.T) {
	for _, tt := range []struct {
		name, y string
		warn    bool
	}{
		{"lease below the timeout", "handlers:\n  h:\n    dedup: {lease: 10s}\n    timeout: 1m\n", true},
		{"default lease, longer timeout", "handlers:\n  h:\n    dedup: {}\n    timeout: 45s\n", true},
		{"lease above the timeout", "handlers:\n  h:\n    dedup: {lease: 2m}\n    timeout: 1m\n", false},
		{"no timeout", "handlers:\n  h:\n    dedup: {lease: 10s}\n", false},
		{"batch, lease below max_wait", "handlers:\n  h:\n    dedup: {lease: 1s}\n    batch: {max_wait: 2s}\n", true},
		{"batch, default lease, longer max_wait", "handlers:\n  h:\n    dedup: {}\n    batch: {max_wait: 1m}\n", true},
		{"batch, lease above max_wait", "handlers:\n  h:\n    dedup: {lease: 10s}\n    batch: {max_wait: 1s}\n", false},
		{"batch, lease above max_wait and timeout", "handlers:\n  h:\n    dedup: {lease: 1m}\n    timeout: 10s\n    batch: {max_wait: 1s}\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("levee.yaml", []byte(tt.y), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
			if has := strings.Contains(got, "levee.yaml:3: handlers.h.dedup: the dedup lease"); has != tt.warn {
				t.Errorf("warnings %q: got a lease warning %v, want %v", got, has, tt.warn)
			}
		})
	}
}

// TestFleetStoreErrorLocated: a bad or missing fleet.store is reported at
// the key fleet.store (README: every error names the key path), without
// the URL, which may hold a password; it named only the section.
func TestFleetStoreErrorLocated(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"fleet:\n  store: \"http://u:hunter2@h/0\"\n", "levee.yaml:2: fleet.store: must be a redis://, rediss:// or unix:// URL"},
		{"fleet:\n  prefix: p\n", "fleet.store: is required"},
	} {
		_, err := config.Parse("levee.yaml", []byte(tc.yaml), nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: got %v, want %q without the password", tc.yaml, err, tc.want)
		}
	}
}

// TestWarningsDedupWithoutDLQ: a dedup section without a dlq section is
// warned of. A message the dedup layer refuses (no identity, a key the
// store refuses) fails every delivery, and without a dlq nothing
// dead-letters it: over RabbitMQ one message without its key was Nacked
// and redelivered 8,334 times in 2 s, with no warning.
func TestWarningsDedupWithoutDLQ(t *testing.T) {
	for _, tt := range []struct {
		name, y string
		warn    bool
	}{
		{"keyed, no dlq", "handlers:\n  h:\n    dedup: {key: {metadata: order_id}}\n", true},
		{"default key, no dlq", "handlers:\n  h:\n    dedup: {}\n", true},
		{"with a dlq", "handlers:\n  h:\n    dlq: {}\n    dedup: {key: {metadata: order_id}}\n", false},
		{"no dedup", "handlers:\n  h:\n    recover: true\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("levee.yaml", []byte(tt.y), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
			if has := strings.Contains(got, "handlers.h.dedup: the handler has no dlq section"); has != tt.warn {
				t.Errorf("warnings %q: got a no-dlq warning %v, want %v", got, has, tt.warn)
			}
		})
	}
}

// TestCheckMaxHold: the holds are checked against the max hold a service
// gives Deps.MaxHold (a share of the ack deadline), which Build checks;
// checked against the ack deadline, `levee config check` and service.New
// passed a max_hold of 9s over a 10s deadline that Run then refused. A
// batch's max_wait must be shorter than the max hold (the Batcher's rule),
// and Build's error names the max hold, not an ack deadline it does not
// know.
func TestCheckMaxHold(t *testing.T) {
	y := "handlers:\n  h:\n    dlq: {max_hold: 9s}\n    batch: {max_wait: 8s}\n  ok:\n    timeout: 7s\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckMaxHold(8 * time.Second)
	for _, want := range []string{
		"levee.yaml:3: handlers.h.dlq.max_hold: 9s is longer than the max hold (8s: config.Deps.MaxHold",
		"levee.yaml:4: handlers.h.batch.max_wait: 8s is not shorter than the max hold (8s: config.Deps.MaxHold",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want a problem %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "handlers.ok") {
		t.Errorf("a timeout within the max hold was refused: %v", err)
	}
	if err := cfg.CheckMaxHold(10 * time.Second); err != nil {
		t.Errorf("within the max hold: %v", err)
	}
	_, err = config.Build(cfg, config.Deps{Publisher: discard{}, MaxHold: 8 * time.Second})
	if err == nil || strings.Contains(err.Error(), "ack deadline (8s)") || !strings.Contains(err.Error(), "max hold (8s") {
		t.Errorf("Build: got %v, want the max hold named", err)
	}
}

// A handler timeout is checked whatever the handler's name: one named
// with a dot ("pay.v2", a common Watermill name) escaped the check, its
// key path having one dot more than handlers.NAME.timeout.
func TestCheckMaxHoldDottedHandlerName(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  pay.v2:\n    timeout: 1h\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "levee.yaml:3: handlers.pay.v2.timeout: 1h0m0s is longer than the max hold (8s"
	if err := cfg.CheckMaxHold(8 * time.Second); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}
