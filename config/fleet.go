package config

import (
	"errors"
	"fmt"
	"io"
	"math"
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
	if c.Store == "" {
		return iconfig.Field("store", errors.New("is required: a redis://, rediss:// or unix:// URL"))
	}
	return iconfig.Field("store", errors.New("must be a redis://, rediss:// or unix:// URL"))
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
	StoreTimeout time.Duration       `yaml:"store_timeout" levee:"nonzero"`
	RateLimit    *FleetRateLimit     `yaml:"ratelimit"`
	Breaker      *FleetBreakerConfig `yaml:"breaker"`
}

// FleetRateLimit is the fleet section's ratelimit: Rate is the fleet's,
// LocalRate (optional) each replica's own bound. A per_key subsection
// needs a rate and a metadata key.
//
// A zero field means the default; in YAML an explicit zero is an error
// where it would silently mean the default (lease, per_key.max_keys) and
// where the key is required (rate, per_key.rate): remove the key for the
// default. burst: 0 means one lease and local_rate: 0 none, as absent.
type FleetRateLimit struct {
	Rate      float64       `yaml:"rate" levee:"rate,nonzero"`
	Burst     int           `yaml:"burst"`
	Lease     time.Duration `yaml:"lease" levee:"nonzero"`
	LocalRate float64       `yaml:"local_rate" levee:"rate"`
	PerKey    *struct {
		Rate     float64 `yaml:"rate" levee:"rate,nonzero"`
		Burst    int     `yaml:"burst"`
		Metadata string  `yaml:"metadata"`
		MaxKeys  int     `yaml:"max_keys" levee:"nonzero"`
	} `yaml:"per_key"`
}

// FleetBreakerConfig is the fleet section's breaker (breaker.Fleet). A
// zero field means the default; in YAML an explicit zero is an error
// (remove the key for the default): breaker.Fleet would silently replace
// it, where the local breaker section rejects it (min_requests, window,
// open_for, drain.start) or reads it as off (failure_ratio). A drain
// subsection needs a window, as the local breaker's does; drain.rate: 0
// means the throughput observed before the trip.
type FleetBreakerConfig struct {
	FailureRatio float64       `yaml:"failure_ratio" levee:"percent,nonzero"`
	MinRequests  uint64        `yaml:"min_requests" levee:"nonzero"`
	Window       time.Duration `yaml:"window" levee:"nonzero"`
	OpenFor      time.Duration `yaml:"open_for" levee:"nonzero"`
	ReportEvery  time.Duration `yaml:"report_every" levee:"nonzero"`
	ProbeTTL     time.Duration `yaml:"probe_ttl" levee:"nonzero"`
	Drain        *struct {
		Window time.Duration `yaml:"window" levee:"nonzero"`
		Start  float64       `yaml:"start" levee:"percent,nonzero"`
		Rate   float64       `yaml:"rate" levee:"rate"`
	} `yaml:"drain"`
}

// maxFleetKey is the longest fleet key ratelimit.Fleet and breaker.Fleet
// accept, in bytes.
const maxFleetKey = 200

// Validate checks what does not need the store, with the rules
// ratelimit.Fleet and breaker.Fleet apply when the section is built, and
// reports every problem, each naming its key (a handler name used as the
// default key is checked when building).
func (h HandlerFleet) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, iconfig.Field(key, fmt.Errorf(format, args...)))
	}
	notNegative := func(key string, v float64) {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			bad(key, "must be finite and not negative, got %v", v)
		}
	}
	if len(h.Key) > maxFleetKey {
		bad("key", "is %d bytes; a fleet key is at most %d", len(h.Key), maxFleetKey)
	}
	if _, err := fleet.ParseOnStoreError(h.OnStoreError); err != nil {
		bad("on_store_error", "%v", err)
	}
	if h.StoreTimeout < 0 {
		bad("store_timeout", "must not be negative")
	}
	if h.RateLimit == nil && h.Breaker == nil {
		errs = append(errs, errors.New("needs a ratelimit or a breaker subsection, or both (fleet: {ratelimit: {rate: 200/s}}, fleet: {breaker: {}}): "+
			"the fleet-wide limit and breaker are set inside it; the handler's own ratelimit and breaker sections are each replica's"))
	}
	if r := h.RateLimit; r != nil {
		if !(r.Rate > 0) || math.IsInf(r.Rate, 0) {
			bad("ratelimit.rate", "is required: a positive rate of the whole fleet (200/s)")
		}
		notNegative("ratelimit.burst", float64(r.Burst))
		notNegative("ratelimit.lease", float64(r.Lease))
		notNegative("ratelimit.local_rate", r.LocalRate)
		if p := r.PerKey; p != nil {
			if !(p.Rate > 0) || math.IsInf(p.Rate, 0) {
				bad("ratelimit.per_key.rate", "is required: a positive rate per key (5/s)")
			}
			if p.Metadata == "" {
				bad("ratelimit.per_key.metadata", "is required: the metadata key whose value names the key")
			}
			notNegative("ratelimit.per_key.burst", float64(p.Burst))
			notNegative("ratelimit.per_key.max_keys", float64(p.MaxKeys))
		}
	}
	if c := h.Breaker; c != nil {
		if c.FailureRatio < 0 || c.FailureRatio > 1 || math.IsNaN(c.FailureRatio) {
			bad("breaker.failure_ratio", "must be between 0%% and 100%%, got %v", c.FailureRatio)
		}
		for _, d := range []struct {
			key string
			v   time.Duration
		}{{"breaker.window", c.Window}, {"breaker.open_for", c.OpenFor}, {"breaker.report_every", c.ReportEvery}, {"breaker.probe_ttl", c.ProbeTTL}} {
			if d.v < 0 {
				bad(d.key, "must not be negative, got %s", d.v)
			}
		}
		if d := c.Drain; d != nil {
			// breaker.Fleet reads a zero window as no drain; the local
			// breaker rejects a drain section without one, and so does this.
			if d.Window <= 0 {
				bad("breaker.drain.window", "must be positive when a drain is configured, got %s", d.Window)
			}
			if d.Start < 0 || d.Start > 1 || math.IsNaN(d.Start) {
				bad("breaker.drain.start", "must be above 0%% and at most 100%%, got %v%%", d.Start*100)
			}
			notNegative("breaker.drain.rate", d.Rate)
		}
	}
	return errors.Join(errs...)
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

// FleetLimiterName is the name (the limiter attribute of the
// levee.ratelimit.* metrics) of handler's fleet limiter when it is a
// limiter beside the handler's ratelimit limiter, which is named handler:
// when the fleet section has a local_rate. Without local_rate the fleet
// limit is in the handler's limiter; without a ratelimit section the
// fleet's limiter is the handler's only one and is named handler.
func FleetLimiterName(handler string) string { return handler + "/fleet" }

// fleetLimiterName is the name of b's fleet limiter (FleetLimiterName).
func fleetLimiterName(b BuildEnv) string {
	if _, ok := Value[ratelimit.Config](b.handler, "ratelimit"); ok {
		return FleetLimiterName(b.Handler)
	}
	return b.Handler
}

// buildFleet builds the fleet limit (put in the ratelimit slot) and the
// fleet breaker (in the breaker slot) with Also; the section's own slot
// stays empty.
func buildFleet(h HandlerFleet, b BuildEnv) (built, error) {
	if b.Deps.FleetStore == nil {
		return built{}, errNoFleetStore
	}
	key := fleetKey(h, b)
	mode, _ := fleet.ParseOnStoreError(h.OnStoreError)
	var closers multiCloser
	if r := h.RateLimit; r != nil && !fleetInLimiter(b.handler) {
		f := fleetLimit(h, b)
		opts := []ratelimit.Option{ratelimit.WithFleet(f), ratelimit.WithName(fleetLimiterName(b)),
			ratelimit.WithMeterProvider(b.Deps.MeterProvider), ratelimit.WithLogger(b.Deps.Logger)}
		if r.LocalRate > 0 {
			opts = append(opts, ratelimit.WithRate(r.LocalRate), ratelimit.WithBurst(max(1, int(r.LocalRate/10))))
		}
		if b.Deps.MaxHold > 0 {
			opts = append(opts, ratelimit.WithMaxHold(b.Deps.MaxHold))
		}
		opts = append(opts, localWaitOptions(b.handler)...)
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

// fleetKey is the fleet section's key, the handler's name by default.
func fleetKey(h HandlerFleet, b BuildEnv) string {
	if h.Key != "" {
		return h.Key
	}
	return b.Handler
}

// fleetLimit is the fleet section's rate limit (h.RateLimit set).
func fleetLimit(h HandlerFleet, b BuildEnv) ratelimit.Fleet {
	r := h.RateLimit
	mode, _ := fleet.ParseOnStoreError(h.OnStoreError)
	f := ratelimit.Fleet{Store: b.Deps.FleetStore, Key: fleetKey(h, b), Rate: r.Rate, Burst: r.Burst, Lease: r.Lease,
		StoreTimeout: h.StoreTimeout, OnStoreError: mode}
	if r.PerKey != nil {
		f.PerKeyRate, f.PerKeyBurst, f.PerKeyMetadata, f.MaxKeys = r.PerKey.Rate, r.PerKey.Burst, r.PerKey.Metadata, r.PerKey.MaxKeys
	}
	return f
}

// fleetInLimiter reports whether the handler's fleet rate limit is built
// into its ratelimit section's limiter (ratelimit.WithFleet): with a
// ratelimit section and no local_rate. One limiter then takes both
// tokens, so max_wait bounds the waits together, a fleet token taken for
// a message the local limit refuses is given back, and each message is
// one sample of the limiter's metrics. With local_rate (a cap of the
// fleet limit's own) the fleet limit is a limiter of its own, outside.
func fleetInLimiter(h *Handler) bool {
	hf, ok := Value[HandlerFleet](h, "fleet")
	if !ok || hf.RateLimit == nil || hf.RateLimit.LocalRate > 0 {
		return false
	}
	_, ok = Value[ratelimit.Config](h, "ratelimit")
	return ok
}

// fleetOptions returns the option that builds the handler's fleet rate
// limit into its ratelimit section's limiter, when fleetInLimiter.
func fleetOptions(b BuildEnv) ([]ratelimit.Option, error) {
	if !fleetInLimiter(b.handler) {
		return nil, nil
	}
	if b.Deps.FleetStore == nil {
		return nil, errNoFleetStore
	}
	hf, _ := Value[HandlerFleet](b.handler, "fleet")
	return []ratelimit.Option{ratelimit.WithFleet(fleetLimit(hf, b))}, nil
}

// localWaitOptions are the handler's ratelimit section's mode, max_wait
// and max_hold, for its fleet limit: a handler that rejects rather than
// waits, or bounds its waits, does so for the fleet's token too.
func localWaitOptions(h *Handler) []ratelimit.Option {
	rc, ok := Value[ratelimit.Config](h, "ratelimit")
	if !ok {
		return nil
	}
	var opts []ratelimit.Option
	if m, err := ratelimit.ParseMode(rc.Mode); err == nil {
		opts = append(opts, ratelimit.WithMode(m))
	}
	if rc.MaxWait > 0 {
		opts = append(opts, ratelimit.WithMaxWait(rc.MaxWait))
	}
	if rc.MaxHold > 0 {
		opts = append(opts, ratelimit.WithMaxHold(rc.MaxHold))
	}
	return opts
}

// errNoFleetStore is Build's error for a fleet section without a store.
var errNoFleetStore = errors.New("a fleet section needs Deps.FleetStore (built from the top-level fleet section, adapters/fleetredis)")

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
		"breaker.drain.window":       "required",
		"breaker.drain.start":        "10%",
		"breaker.drain.rate":         "the fleet's throughput before the trip",
		// the top-level fleet section
		"store":  "required",
		"prefix": "levee:fleet",
	}
}
