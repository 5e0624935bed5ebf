package batch

import (
	"errors"
	"time"

	levconfig "github.com/levee-dev/levee/internal/config"
)

// Config is the batch section of a handler's YAML configuration:
//
//	batch:
//	  max_size: 100        # messages per batch (default 100)
//	  max_bytes: 1048576   # payload bytes per batch, an integer (default: no limit)
//	  max_wait: 50ms       # linger since the batch's first message (default 50ms)
//	  max_in_flight: 2     # batches processed at once (default 2)
//	  max_hold: 5s         # bound on linger plus queueing (default: no bound; config.Batcher: Deps.MaxHold)
//
// An absent key keeps the default; a present key must be valid (zero and
// negative sizes are errors, and so is max_hold: 0, as in the dlq,
// breaker, ratelimit and priority sections: remove the key for the
// transport's bound). The zero Config is valid and means defaults.
type Config struct {
	MaxSize     *int           `yaml:"max_size"`
	MaxBytes    *int           `yaml:"max_bytes"`
	MaxWait     *time.Duration `yaml:"max_wait"`
	MaxInFlight *int           `yaml:"max_in_flight"`
	MaxHold     *time.Duration `yaml:"max_hold" levee:"nonzero"`
}

// Options returns the options the section sets, for New(fn,
// c.Options()...). Invalid values make New return an error.
func (c Config) Options() []Option {
	var opts []Option
	if c.MaxSize != nil {
		opts = append(opts, WithMaxSize(*c.MaxSize))
	}
	if c.MaxBytes != nil {
		opts = append(opts, WithMaxBytes(*c.MaxBytes))
	}
	if c.MaxWait != nil {
		opts = append(opts, WithMaxWait(*c.MaxWait))
	}
	if c.MaxInFlight != nil {
		opts = append(opts, WithMaxInFlight(*c.MaxInFlight))
	}
	if c.MaxHold != nil {
		opts = append(opts, WithMaxHold(*c.MaxHold))
	}
	return opts
}

// Validate checks the section with the same rules as New and reports
// every problem, each naming the key at fault.
func (c Config) Validate() error {
	cfg := newConfig()
	for _, o := range c.Options() {
		o.apply(cfg)
	}
	cfg.check()
	errs := make([]error, 0, len(cfg.errs))
	for _, e := range cfg.errs {
		errs = append(errs, levconfig.Field(e.key, e.err))
	}
	return errors.Join(errs...)
}
