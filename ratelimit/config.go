package ratelimit

import (
	"errors"
	"sort"
	"time"

	lconfig "github.com/levee-dev/levee/internal/config"
)

// Config is the YAML section of a limiter (key ratelimit of a handler):
//
//	ratelimit:
//	  rate: 200/s          # omitted: no limit of its own (per-key only)
//	  burst: 20            # default 1
//	  mode: wait           # or reject; default wait
//	  max_wait: 1s         # default 0, no bound
//	  key: {metadata: customer_id}
//	  per_key:
//	    rate: 5/s
//	    burst: 5
//	    max_keys: 10000    # default 10000
//	    idle: 10m          # default 10m
//	    overrides:
//	      vip: {rate: 50/s, burst: 10}
//	      "": {rate: 20/s}  # messages without a usable key
//	  adaptive: {min: 50/s, max: 1000/s, target_latency: 200ms}
//
// The zero Config is an unlimited limiter. Build a Limiter with
// New(c.Options()...), adding dependencies (WithMeterProvider, WithLogger,
// WithMaxHold, WithKeyFunc) after them. Validate reports the same errors as
// New, naming the key at fault.
type Config struct {
	// Rate is the limiter's own rate; nil means no limit of its own. 0
	// is a pause: nothing is admitted until the rate is raised (see "A
	// rate of 0" in the package doc); config's Warnings and `levee config
	// check` report it.
	Rate *float64 `yaml:"rate" levee:"rate"`
	// Burst is the bucket size; nil means 1.
	Burst *int `yaml:"burst"`
	// Mode is "wait" (default) or "reject".
	Mode string `yaml:"mode"`
	// MaxWait turns a longer wait into a rejection; 0 means no bound.
	MaxWait time.Duration `yaml:"max_wait"`
	// MaxHold is the shared max-hold bound, usually set by the integrator
	// from the transport's ack deadline; 0 means no bound.
	MaxHold time.Duration `yaml:"max_hold" levee:"nonzero"`
	// CatchUp bounds the catch-up after late wake-ups; nil means
	// DefaultCatchUp, 0 strict spacing.
	CatchUp *time.Duration `yaml:"catch_up"`
	// Key selects the per-key limit's key; needs PerKey.
	Key *KeyConfig `yaml:"key"`
	// PerKey is the per-key limit; needs Key.
	PerKey *PerKeyConfig `yaml:"per_key"`
	// Adaptive makes Rate follow the downstream's health.
	Adaptive *AdaptiveConfig `yaml:"adaptive"`
}

// KeyConfig selects the key of per-key limits. A key function can only be
// given in code (WithKeyFunc).
type KeyConfig struct {
	// Metadata is the message metadata key holding the key.
	Metadata string `yaml:"metadata"`
}

// PerKeyConfig is the per-key section.
type PerKeyConfig struct {
	Rate      float64          `yaml:"rate" levee:"rate"`
	Burst     *int             `yaml:"burst"`                    // nil means 1
	MaxKeys   int              `yaml:"max_keys" levee:"nonzero"` // absent means DefaultMaxKeys
	Idle      *time.Duration   `yaml:"idle"`                     // nil means DefaultKeyIdle
	Overrides map[string]Limit `yaml:"overrides"`
}

// Limit is one per-key override.
type Limit struct {
	Rate  float64 `yaml:"rate" levee:"rate"`
	Burst *int    `yaml:"burst"` // nil means 1
}

// AdaptiveConfig is the adaptive section; see Adaptive for the meaning and
// defaults of each field.
//
// An explicit zero is an error for every key but ignore_latency (Adaptive
// reads a zero as the default: max_error_rate 0 would be 5%, interval 0
// 250ms): remove the key for the default.
type AdaptiveConfig struct {
	Min           float64       `yaml:"min" levee:"rate"`
	Max           float64       `yaml:"max" levee:"rate"`
	TargetLatency time.Duration `yaml:"target_latency" levee:"nonzero"`
	// LatencyTolerance is a plain number, e.g. 2.
	LatencyTolerance float64       `yaml:"latency_tolerance" levee:"nonzero"`
	IgnoreLatency    bool          `yaml:"ignore_latency"`
	MaxErrorRate     float64       `yaml:"max_error_rate" levee:"percent,nonzero"`
	Interval         time.Duration `yaml:"interval" levee:"nonzero"`
	Increase         float64       `yaml:"increase" levee:"rate,nonzero"`
	Decrease         float64       `yaml:"decrease" levee:"percent,nonzero"`
	MinSamples       int           `yaml:"min_samples" levee:"nonzero"`
}

func burstOr1(p *int) int {
	if p == nil {
		return 1
	}
	return *p
}

// Options returns the options that build this configuration. An invalid
// mode string is carried as an option that makes New fail.
func (c Config) Options() []Option {
	var opts []Option
	if c.Rate != nil {
		opts = append(opts, WithRate(*c.Rate))
	}
	if c.Burst != nil {
		opts = append(opts, WithBurst(*c.Burst))
	}
	if m, err := ParseMode(c.Mode); err != nil {
		opts = append(opts, optionFunc(func(cf *config) { cf.errs = append(cf.errs, err) }))
	} else {
		opts = append(opts, WithMode(m))
	}
	if c.MaxWait != 0 {
		opts = append(opts, WithMaxWait(c.MaxWait))
	}
	if c.MaxHold != 0 {
		opts = append(opts, WithMaxHold(c.MaxHold))
	}
	if c.CatchUp != nil {
		opts = append(opts, WithCatchUp(*c.CatchUp))
	}
	if c.Key != nil && c.Key.Metadata != "" {
		opts = append(opts, WithKeyMetadata(c.Key.Metadata))
	}
	if p := c.PerKey; p != nil {
		opts = append(opts, WithPerKey(p.Rate, burstOr1(p.Burst)))
		if p.MaxKeys != 0 {
			opts = append(opts, WithMaxKeys(p.MaxKeys))
		}
		if p.Idle != nil {
			opts = append(opts, WithKeyIdle(*p.Idle))
		}
		keys := make([]string, 0, len(p.Overrides))
		for k := range p.Overrides {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o := p.Overrides[k]
			opts = append(opts, WithKeyOverride(k, o.Rate, burstOr1(o.Burst)))
		}
	}
	if a := c.Adaptive; a != nil {
		opts = append(opts, WithAdaptive(Adaptive{
			Min: a.Min, Max: a.Max, TargetLatency: a.TargetLatency, LatencyTolerance: a.LatencyTolerance,
			IgnoreLatency: a.IgnoreLatency, MaxErrorRate: a.MaxErrorRate,
			Interval: a.Interval, Increase: a.Increase, Decrease: a.Decrease, MinSamples: a.MinSamples,
		}))
	}
	return opts
}

// Validate checks the section with the same rules as New and returns a
// config.Field error naming the key at fault (it wraps ErrInvalidConfig).
func (c Config) Validate() error {
	if c.Key != nil && c.Key.Metadata == "" {
		return lconfig.Field("key.metadata", invalid("", "must name a metadata key", ""))
	}
	err := newConfig(c.Options()).validate()
	var ie *invalidError
	if errors.As(err, &ie) && ie.field != "" {
		return lconfig.Field(ie.field, &invalidError{what: ie.what, val: ie.val})
	}
	return err
}
