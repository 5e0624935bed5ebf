package priority

import (
	"errors"
	"time"

	lconfig "github.com/levee-dev/levee/internal/config"
)

// SchedulerConfig is one named scheduler in the YAML `schedulers:`
// section; handlers refer to it by name (Config.Scheduler):
//
//	schedulers:
//	  shared: {slots: 8, aging: 500ms, max_waiting: 10000, max_wait: 30s, default_priority: 0}
//
// An absent field keeps the option's default. An explicit zero is an
// error for slots, aging, max_waiting and retry_after (where the option
// rejects zero or gives it another meaning: aging 0 is strict priority,
// which starves); remove the key for the default.
type SchedulerConfig struct {
	// Slots: WithSlots (default 8).
	Slots int `yaml:"slots" levee:"nonzero"`
	// Aging: WithAging (default 500ms).
	Aging time.Duration `yaml:"aging" levee:"nonzero"`
	// MaxWaiting: WithMaxWaiting (default 10000).
	MaxWaiting int `yaml:"max_waiting" levee:"nonzero"`
	// MaxWait: WithMaxWait (default none).
	MaxWait time.Duration `yaml:"max_wait"`
	// MaxHold: WithMaxHold (default none).
	MaxHold time.Duration `yaml:"max_hold" levee:"nonzero"`
	// DefaultPriority: WithDefaultPriority (default 0).
	DefaultPriority int `yaml:"default_priority"`
	// RetryAfter: WithRetryAfter (default 1s).
	RetryAfter time.Duration `yaml:"retry_after" levee:"nonzero"`
}

// Options returns the options this section sets. Add WithName (the
// section's key), WithMeterProvider and, if the transport has an ack
// deadline, WithMaxHold, then call NewScheduler.
func (c SchedulerConfig) Options() []Option {
	var opts []Option
	if c.Slots != 0 {
		opts = append(opts, WithSlots(c.Slots))
	}
	if c.Aging != 0 {
		opts = append(opts, WithAging(c.Aging))
	}
	if c.MaxWaiting != 0 {
		opts = append(opts, WithMaxWaiting(c.MaxWaiting))
	}
	if c.MaxWait != 0 {
		opts = append(opts, WithMaxWait(c.MaxWait))
	}
	if c.MaxHold != 0 {
		opts = append(opts, WithMaxHold(c.MaxHold))
	}
	if c.DefaultPriority != 0 {
		opts = append(opts, WithDefaultPriority(c.DefaultPriority))
	}
	if c.RetryAfter != 0 {
		opts = append(opts, WithRetryAfter(c.RetryAfter))
	}
	return opts
}

// Validate applies NewScheduler's rules to the section and names the key
// at fault.
func (c SchedulerConfig) Validate() error {
	_, err := newConfig(c.Options()...)
	return located(err)
}

// Config is a handler's `priority:` section: which named scheduler it
// shares, and optionally its messages' default priority:
//
//	handlers:
//	  payments:
//	    priority: {scheduler: shared, default_priority: 5}
type Config struct {
	// Scheduler names an entry of the `schedulers:` section. Required.
	Scheduler string `yaml:"scheduler"`
	// DefaultPriority, when set, is WithHandlerPriority: the priority of
	// this handler's messages without a valid levee_priority.
	DefaultPriority *int `yaml:"default_priority"`
}

// Options returns the handler options this section sets, for
// Scheduler.HandlerMiddleware.
func (c Config) Options() []MiddlewareOption {
	if c.DefaultPriority == nil {
		return nil
	}
	return []MiddlewareOption{WithHandlerPriority(*c.DefaultPriority)}
}

// Validate checks the section: a scheduler name is required, and the
// default priority follows HandlerMiddleware's rules. Whether the named
// scheduler exists is checked by whoever holds the `schedulers:` section.
func (c Config) Validate() error {
	if c.Scheduler == "" {
		return lconfig.Field("scheduler", invalid("scheduler", "a scheduler name is required"))
	}
	_, err := newMWConfig(c.Options()...)
	return located(err)
}

func located(err error) error {
	var ie *invalidError
	if errors.As(err, &ie) {
		return lconfig.Field(ie.key, err)
	}
	return err
}
