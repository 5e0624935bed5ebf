package breaker

import (
	"errors"
	"strconv"
	"time"

	levcfg "github.com/levee-dev/levee/internal/config"
)

// Config is the breaker section of a Levee YAML file. Zero values mean the
// option's default; an absent drain section means no drain.
//
//	breaker:
//	  consecutive_failures: 5
//	  failure_ratio: 0.5
//	  min_requests: 20
//	  window: 10s
//	  open_for: 10s
//	  half_open_probes: 3
//	  slow_call: {threshold: 2s, ratio: 0.5}
//	  max_hold: 30s
//	  drain: {window: 30s, start: 10%, aggression: 1.0, rate: 100/s}
//
// Under a handler, the section may instead name a breaker shared by several
// handlers, defined once at the top level of the file (breakers: {name:
// {...}}): breaker: {shared: name}. Shared excludes every other key.
//
// Ratios take a fraction or a percentage (0.5 or 50%). An absent key
// keeps the option's default; an explicit zero is an error where the
// option rejects it (min_requests, window, open_for, half_open_probes,
// drain.start, drain.aggression): remove the key for the default.
type Config struct {
	Shared              string          `yaml:"shared"`
	ConsecutiveFailures int             `yaml:"consecutive_failures"`
	FailureRatio        float64         `yaml:"failure_ratio" levee:"percent"`
	MinRequests         int             `yaml:"min_requests" levee:"nonzero"`
	Window              time.Duration   `yaml:"window" levee:"nonzero"`
	OpenFor             time.Duration   `yaml:"open_for" levee:"nonzero"`
	HalfOpenProbes      int             `yaml:"half_open_probes" levee:"nonzero"`
	SlowCall            *SlowCallConfig `yaml:"slow_call"`
	MaxHold             time.Duration   `yaml:"max_hold" levee:"nonzero"`
	Drain               *DrainConfig    `yaml:"drain"`
}

// SlowCallConfig is the slow_call subsection (see WithSlowCall).
type SlowCallConfig struct {
	Threshold time.Duration `yaml:"threshold"`
	Ratio     float64       `yaml:"ratio" levee:"percent"`
}

// DrainConfig is the drain subsection (see WithDrain, WithDrainRate).
// Start defaults to 10% and Aggression to 1.0 when zero; Window is required.
type DrainConfig struct {
	Window     time.Duration `yaml:"window"`
	Start      float64       `yaml:"start" levee:"percent,nonzero"`
	Aggression float64       `yaml:"aggression" levee:"nonzero"`
	Rate       float64       `yaml:"rate" levee:"rate"`
}

// Options returns the options equivalent to c, for New(c.Options()...).
// Zero fields are left to the defaults. Shared is not an option: the caller
// resolves it to the shared Breaker.
func (c Config) Options() []Option {
	var opts []Option
	if c.ConsecutiveFailures != 0 {
		opts = append(opts, WithConsecutiveFailures(c.ConsecutiveFailures))
	}
	if c.FailureRatio != 0 || c.MinRequests != 0 {
		min := c.MinRequests
		if min == 0 {
			min = DefaultMinRequests
		}
		opts = append(opts, WithFailureRatio(c.FailureRatio, min))
	}
	if c.Window != 0 {
		opts = append(opts, WithWindow(c.Window))
	}
	if c.OpenFor != 0 {
		opts = append(opts, WithOpenFor(c.OpenFor))
	}
	if c.HalfOpenProbes != 0 {
		opts = append(opts, WithHalfOpenProbes(c.HalfOpenProbes))
	}
	if c.SlowCall != nil {
		opts = append(opts, WithSlowCall(c.SlowCall.Threshold, c.SlowCall.Ratio))
	}
	if c.MaxHold != 0 {
		opts = append(opts, WithMaxHold(c.MaxHold))
	}
	if d := c.Drain; d != nil {
		start, aggr := d.Start, d.Aggression
		if start == 0 {
			start = DefaultDrainStart
		}
		if aggr == 0 {
			aggr = DefaultDrainAggression
		}
		opts = append(opts, WithDrain(d.Window, start, aggr))
		if d.Rate != 0 {
			opts = append(opts, WithDrainRate(d.Rate))
		}
	}
	return opts
}

// Effective returns c with every setting New would default filled in by
// New's own rules: the trip policy (ConsecutiveFailures
// DefaultConsecutiveFailures when c sets none, MinRequests with a failure
// ratio), Window, OpenFor, HalfOpenProbes and the drain's Start and
// Aggression. A zero FailureRatio, slow call or MaxHold stays zero (off,
// no bound); so does a drain's Rate (the observed throughput). c is
// returned unchanged when it names a Shared breaker or is invalid.
func (c Config) Effective() Config {
	if c.Shared != "" {
		return c
	}
	cfg, err := newConfig(c.Options()...)
	if err != nil {
		return c
	}
	e := c
	e.ConsecutiveFailures = cfg.consecutiveFailures
	e.FailureRatio, e.MinRequests = cfg.failureRatio, cfg.minRequests
	e.Window, e.OpenFor, e.HalfOpenProbes = cfg.window, cfg.openFor, cfg.probes
	if c.Drain != nil {
		d := *c.Drain
		d.Start, d.Aggression = cfg.drainStart, cfg.drainAggression
		e.Drain = &d
	}
	return e
}

// TripsAfter returns how many consecutive failures trip a breaker built
// from c: ConsecutiveFailures, or DefaultConsecutiveFailures when c sets
// no trip policy at all (New's rule). It is 0 when c does not trip on
// consecutive failures, is invalid, or names a Shared breaker.
func (c Config) TripsAfter() int {
	if c.Shared != "" {
		return 0
	}
	cfg, err := newConfig(c.Options()...)
	if err != nil {
		return 0
	}
	return cfg.consecutiveFailures
}

// Validate checks c with the same rules as New and names the key at fault.
func (c Config) Validate() error {
	if c.Shared != "" {
		rest := c
		rest.Shared = ""
		if rest != (Config{}) {
			name := c.Shared
			if q := strconv.Quote(name); q != `"`+name+`"` {
				name = q // a newline or a quote in the name: the problem stays one line
			}
			return levcfg.Field("shared", errors.New("a shared breaker takes its settings from breakers."+name+"; remove the other keys"))
		}
		return nil
	}
	_, err := newConfig(c.Options()...)
	var ce *configError
	if errors.As(err, &ce) {
		return levcfg.Field(ce.key, errors.New(ce.msg))
	}
	return err
}
