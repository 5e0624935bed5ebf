package dlq

import (
	"errors"
	"fmt"
	"time"

	levconfig "github.com/levee-dev/levee/internal/config"
)

// Config is the YAML section of the dlq slot:
//
//	dlq:
//	  topic: payments.dlq        # default "<subscribed topic>.dlq"
//	  consumer_group: payments   # recorded in levee_consumer_group
//	  max_hold: 30s              # default the transport ack deadline (Deps.MaxHold)
//	  retry: {max_attempts: 5, initial: 100ms, max: 10s, multiplier: 2, max_elapsed: 1m}
//	  attempts: shared           # count attempts in the store section's backend (default local)
//
// An absent field takes the default of the matching option. An explicit
// zero is an error where the option rejects zero or gives it another
// meaning (retry.*, max_error_length, attempt_table_size,
// attempt_table_ttl, attempt_ttl): remove the key for the default.
// Validate runs the same checks as New. `attempts: shared` needs a store
// section of kind redis or postgres (config.Load checks it) and
// an AttemptStore (config.Deps.AttemptStore) when the stack is built.
type Config struct {
	Topic         string        `yaml:"topic"`
	ConsumerGroup string        `yaml:"consumer_group"`
	MaxHold       time.Duration `yaml:"max_hold" levee:"nonzero"`
	// MaxDeferred dead-letters a message deferred again this long after
	// its first deferral (WithMaxDeferred); absent or 0, never.
	MaxDeferred time.Duration `yaml:"max_deferred"`
	Retry       RetryConfig   `yaml:"retry"`
	// MaxErrorLength bounds levee_error in bytes (default 1024, min 16).
	MaxErrorLength int `yaml:"max_error_length" levee:"nonzero"`
	// AttemptTableSize bounds the in-process attempt table (default 10000).
	AttemptTableSize int `yaml:"attempt_table_size" levee:"nonzero"`
	// AttemptTableTTL is how long an entry of that table outlives the
	// Nack that made it (or its retry's due time) when the message does
	// not come back to this process (default 10m; WithAttemptTableTTL).
	AttemptTableTTL time.Duration `yaml:"attempt_table_ttl" levee:"nonzero"`
	// Attempts is where failed attempts are counted: "local" (the default
	// when empty: the transport's delivery count, else this process's
	// table) or "shared" (an AttemptStore every instance uses, see
	// WithAttemptStore).
	Attempts string `yaml:"attempts"`
	// AttemptTTL is how long a shared attempt record outlives the last
	// failure (default 24h); only with attempts: shared.
	AttemptTTL time.Duration `yaml:"attempt_ttl" levee:"nonzero"`
}

// Attempt counting modes of Config.Attempts.
const (
	AttemptsLocal  = "local"
	AttemptsShared = "shared"
)

// SharedAttempts reports whether the section asks for attempts: shared.
func (c Config) SharedAttempts() bool { return c.Attempts == AttemptsShared }

// RetryConfig is the retry subsection; zero fields take DefaultBackoff's
// values, except MaxElapsed whose zero means no bound.
type RetryConfig struct {
	MaxAttempts int           `yaml:"max_attempts" levee:"nonzero"`
	Initial     time.Duration `yaml:"initial" levee:"nonzero"`
	Max         time.Duration `yaml:"max" levee:"nonzero"`
	Multiplier  float64       `yaml:"multiplier" levee:"nonzero"`
	MaxElapsed  time.Duration `yaml:"max_elapsed"`
}

// Backoff returns the policy the section describes, defaults filled in.
func (c RetryConfig) Backoff() Backoff {
	b := DefaultBackoff()
	if c.MaxAttempts != 0 {
		b.MaxAttempts = c.MaxAttempts
	}
	if c.Initial != 0 {
		b.Initial = c.Initial
	}
	if c.Max != 0 {
		b.Max = c.Max
	} else if b.Initial > b.Max {
		b.Max = b.Initial
	}
	if c.Multiplier != 0 {
		b.Multiplier = c.Multiplier
	}
	b.MaxElapsed = c.MaxElapsed
	return b
}

// Options returns the options the section describes; pass them to New,
// followed by options for what YAML cannot say (WithMeterProvider,
// WithLogger, WithClassifier, hooks).
func (c Config) Options() []Option {
	opts := []Option{WithBackoff(c.Retry.Backoff())}
	if c.MaxHold != 0 {
		// Absent, it leaves the max hold given before (config.Deps.MaxHold:
		// the transport's ack deadline) in place.
		opts = append(opts, WithMaxHold(c.MaxHold))
	}
	if c.Topic != "" {
		opts = append(opts, WithTopic(c.Topic))
	}
	if c.ConsumerGroup != "" {
		opts = append(opts, WithConsumerGroup(c.ConsumerGroup))
	}
	if c.MaxDeferred != 0 {
		opts = append(opts, WithMaxDeferred(c.MaxDeferred))
	}
	if c.MaxErrorLength != 0 {
		opts = append(opts, WithMaxErrorLength(c.MaxErrorLength))
	}
	if c.AttemptTableSize != 0 {
		opts = append(opts, WithAttemptTableSize(c.AttemptTableSize))
	}
	if c.AttemptTableTTL != 0 {
		opts = append(opts, WithAttemptTableTTL(c.AttemptTableTTL))
	}
	if c.AttemptTTL != 0 {
		opts = append(opts, WithAttemptTTL(c.AttemptTTL))
	}
	return opts
}

// Validate checks the section with the same rules as New and names the key
// at fault (config.Field), so the decoder reports file, line and path.
func (c Config) Validate() error {
	switch c.Attempts {
	case "", AttemptsLocal:
		if c.AttemptTTL != 0 {
			return levconfig.Field("attempt_ttl", errors.New("only with attempts: shared"))
		}
	case AttemptsShared:
	default:
		return levconfig.Field("attempts", fmt.Errorf("unknown attempt counting %q (want local or shared)", c.Attempts))
	}
	cfg := newConfig(c.Options())
	err := cfg.validate()
	if err == nil {
		return nil
	}
	var se *SettingError
	if errors.As(err, &se) {
		key := se.Key
		switch key {
		case "initial", "max", "multiplier", "max_attempts", "max_elapsed":
			key = "retry." + key
		}
		return levconfig.Field(key, errors.New(se.Msg))
	}
	return err
}
