package config

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/levee-dev/levee/breaker"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/ratelimit"
)

// FleetConfig is the file's top-level fleet section: where fleet-wide
// state lives (docs/FLEET.md). The core does not open the store: a
// program builds it from this section (adapters/fleetredis.Open) and
// passes it as Deps.FleetStore.
//
//	fleet:
//	  store: redis://127.0.0.1:6379/0
//	  prefix: levee:fleet        # default
type FleetConfig struct {
	// Store is the Redis URL (redis://, rediss:// or unix://).
	Store string `yaml:"store"`
	// Prefix starts every key; "" means the store's default.
	Prefix string `yaml:"prefix"`
}

// Validate checks the store URL's scheme.
func (c FleetConfig) Validate() error {
	for _, s := range []string{"redis://", "rediss://", "unix://"} {
		if strings.HasPrefix(c.Store, s) {
			return nil
		}
	}
	return fmt.Errorf("store must be a redis://, rediss:// or unix:// URL")
}

// fleetFrom decodes the top-level fleet section.
func fleetFrom(raw iconfig.Raw) (FleetConfig, bool, error) {
	var c FleetConfig
	if raw.IsZero() {
		return c, false, nil
	}
	if err := raw.Decode(&c); err != nil {
		return c, false, err
	}
	return c, true, nil
}

// Fleet returns the file's fleet section and whether it has one.
func (c *Config) Fleet() (FleetConfig, bool) { return c.fleet, c.hasFleet }

// HandlerFleet is a handler's fleet section: a rate limit and a breaker
// shared by every replica, on the store passed as Deps.FleetStore.
//
//	fleet:
//	  key: payments                 # default: the handler's name
//	  on_store_error: local         # or fail_open, fail_closed
//	  store_timeout: 50ms
//	  ratelimit: {rate: 200/s, burst: 40, lease: 200ms, local_rate: 100/s,
//	              per_key: {rate: 5/s, burst: 5, metadata: customer_id, max_keys: 1000}}
//	  breaker: {failure_ratio: 0.5, min_requests: 20, window: 10s, open_for: 10s,
//	            report_every: 200ms, probe_ttl: 5s, drain: {window: 30s, start: 10%, rate: 0}}
//
// The fleet limit goes in the ratelimit slot and the fleet breaker in the
// breaker slot, each outside a local ratelimit or breaker section of the
// same handler, so both hold.
type HandlerFleet struct {
	Key          string              `yaml:"key"`
	OnStoreError string              `yaml:"on_store_error"`
	StoreTimeout time.Duration       `yaml:"store_timeout"`
	RateLimit    *FleetRateLimit     `yaml:"ratelimit"`
	Breaker      *FleetBreakerConfig `yaml:"breaker"`
}

// FleetRateLimit is the fleet section's ratelimit: Rate is the fleet's,
// LocalRate (optional) each replica's own bound.
type FleetRateLimit struct {
	Rate      float64       `yaml:"rate" levee:"rate"`
	Burst     int           `yaml:"burst"`
	Lease     time.Duration `yaml:"lease"`
	LocalRate float64       `yaml:"local_rate" levee:"rate"`
	PerKey    *struct {
		Rate     float64 `yaml:"rate" levee:"rate"`
		Burst    int     `yaml:"burst"`
		Metadata string  `yaml:"metadata"`
		MaxKeys  int     `yaml:"max_keys"`
	} `yaml:"per_key"`
}

// FleetBreakerConfig is the fleet section's breaker (breaker.Fleet).
type FleetBreakerConfig struct {
	FailureRatio float64       `yaml:"failure_ratio" levee:"percent"`
	MinRequests  uint64        `yaml:"min_requests"`
	Window       time.Duration `yaml:"window"`
	OpenFor      time.Duration `yaml:"open_for"`
	ReportEvery  time.Duration `yaml:"report_every"`
	ProbeTTL     time.Duration `yaml:"probe_ttl"`
	Drain        *struct {
		Window time.Duration `yaml:"window"`
		Start  float64       `yaml:"start" levee:"percent"`
		Rate   float64       `yaml:"rate" levee:"rate"`
	} `yaml:"drain"`
}

// Validate checks what does not need the store.
func (h HandlerFleet) Validate() error {
	if _, err := fleet.ParseOnStoreError(h.OnStoreError); err != nil {
		return fmt.Errorf("on_store_error: %w", err)
	}
	if h.StoreTimeout < 0 {
		return fmt.Errorf("store_timeout must not be negative")
	}
	if h.RateLimit == nil && h.Breaker == nil {
		return fmt.Errorf("needs ratelimit, breaker or both")
	}
	if r := h.RateLimit; r != nil && (r.Rate <= 0 || r.LocalRate < 0 || r.Burst < 0 || r.Lease < 0) {
		return fmt.Errorf("ratelimit: rate must be positive; burst, lease and local_rate not negative")
	}
	return nil
}

func fleetSection() Section {
	return newSection("fleet", middleware.SlotRateLimit, fleetLabel, buildFleet)
}

func fleetLabel(h HandlerFleet) string {
	var parts []string
	if h.RateLimit != nil {
		parts = append(parts, "ratelimit="+iconfig.FormatRate(h.RateLimit.Rate))
	}
	if h.Breaker != nil {
		parts = append(parts, "breaker")
	}
	mode, _ := fleet.ParseOnStoreError(h.OnStoreError)
	return "fleet " + strings.Join(parts, " ") + " on_store_error=" + mode.String()
}

// buildFleet builds the fleet limit (put in the ratelimit slot) and the
// fleet breaker (in the breaker slot) with Also; the section's own slot
// stays empty.
func buildFleet(h HandlerFleet, b BuildEnv) (built, error) {
	if b.Deps.FleetStore == nil {
		return built{}, fmt.Errorf("a fleet section needs Deps.FleetStore (built from the top-level fleet section, adapters/fleetredis)")
	}
	key := h.Key
	if key == "" {
		key = b.Handler
	}
	mode, _ := fleet.ParseOnStoreError(h.OnStoreError)
	var closers multiCloser
	if r := h.RateLimit; r != nil {
		f := ratelimit.Fleet{Store: b.Deps.FleetStore, Key: key, Rate: r.Rate, Burst: r.Burst, Lease: r.Lease,
			StoreTimeout: h.StoreTimeout, OnStoreError: mode}
		if r.PerKey != nil {
			f.PerKeyRate, f.PerKeyBurst, f.PerKeyMetadata, f.MaxKeys = r.PerKey.Rate, r.PerKey.Burst, r.PerKey.Metadata, r.PerKey.MaxKeys
		}
		opts := []ratelimit.Option{ratelimit.WithFleet(f), ratelimit.WithName(b.Handler),
			ratelimit.WithMeterProvider(b.Deps.MeterProvider), ratelimit.WithLogger(b.Deps.Logger)}
		if r.LocalRate > 0 {
			opts = append(opts, ratelimit.WithRate(r.LocalRate), ratelimit.WithBurst(max(1, int(r.LocalRate/10))))
		}
		if b.Deps.MaxHold > 0 {
			opts = append(opts, ratelimit.WithMaxHold(b.Deps.MaxHold))
		}
		l, err := ratelimit.New(opts...)
		if err != nil {
			return built{}, fmt.Errorf("ratelimit: %w", err)
		}
		closers = append(closers, l)
		b.Also(middleware.SlotRateLimit, l.Middleware, "fleet ratelimit")
	}
	if c := h.Breaker; c != nil {
		f := breaker.Fleet{Store: b.Deps.FleetStore, Key: key, FailureRatio: c.FailureRatio, MinRequests: c.MinRequests,
			Window: c.Window, OpenFor: c.OpenFor, ReportEvery: c.ReportEvery, ProbeTTL: c.ProbeTTL,
			MaxHold: b.Deps.MaxHold, StoreTimeout: h.StoreTimeout, OnStoreError: mode,
			Name: b.Handler, MeterProvider: b.Deps.MeterProvider, Logger: b.Deps.Logger}
		if d := c.Drain; d != nil {
			f.DrainWindow, f.DrainStart, f.DrainRate = d.Window, d.Start, d.Rate
		}
		fb, err := breaker.NewFleet(f)
		if err != nil {
			_ = closers.Close()
			return built{}, fmt.Errorf("breaker: %w", err)
		}
		closers = append(closers, fb)
		b.Also(middleware.SlotBreaker, fb.Middleware, "fleet breaker")
	}
	return built{closer: closers, instance: closers}, nil
}

// multiCloser closes several things.
type multiCloser []io.Closer

// Close closes each, returning the first error.
func (m multiCloser) Close() error {
	var first error
	for _, c := range m {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// fleetDefaults is what each key of a handler's fleet section means when
// the file leaves it out (sectionDefaults).
func fleetDefaults() map[string]string {
	return map[string]string{
		"key":                        "the handler's name",
		"on_store_error":             fleet.Local.String(),
		"store_timeout":              dur(fleet.DefaultStoreTimeout),
		"ratelimit":                  "off",
		"ratelimit.rate":             "required",
		"ratelimit.burst":            "one lease (rate x lease)",
		"ratelimit.lease":            dur(fleet.DefaultPeriod),
		"ratelimit.local_rate":       "none",
		"ratelimit.per_key":          "off",
		"ratelimit.per_key.rate":     "required",
		"ratelimit.per_key.burst":    "one lease",
		"ratelimit.per_key.metadata": "required",
		"ratelimit.per_key.max_keys": itoa(ratelimit.DefaultFleetMaxKeys),
		"breaker":                    "off",
		"breaker.failure_ratio":      pct(breaker.DefaultFleetRatio),
		"breaker.min_requests":       itoa(breaker.DefaultFleetMinRequests),
		"breaker.window":             dur(breaker.DefaultFleetWindow),
		"breaker.open_for":           dur(breaker.DefaultFleetOpenFor),
		"breaker.report_every":       dur(breaker.DefaultFleetReportEvery),
		"breaker.probe_ttl":          dur(breaker.DefaultFleetProbeTTL),
		"breaker.drain":              "off",
		"breaker.drain.window":       "off",
		"breaker.drain.start":        "10%",
		"breaker.drain.rate":         "the fleet's throughput before the trip",
		// the top-level fleet section
		"store":  "required",
		"prefix": "levee:fleet",
	}
}
