package dedup

import (
	"errors"
	"fmt"
	"time"

	levconfig "github.com/levee-dev/levee/internal/config"
)

// Config is the YAML section of a deduplicator (key dedup of a handler):
//
//	dedup:
//	  key: {metadata: order_id}    # or {json_pointer: /order/id}; default: the message UUID
//	  lease: 30s                   # default 30s
//	  window: 24h                  # default 24h
//	  store: memory                # or shared (the store the service passes in); default memory
//	  max_keys: 100000             # memory store only; default 100000
//	  store_timeout: 2s            # default 2s
//	  busy_retry: 250ms            # default 250ms
//
// An absent key keeps the default; an explicit zero is an error in YAML,
// as the options and NewMemStore reject it (remove the key for the
// default).
//
// Build a Dedup with New(append(c.Options(), WithStore(s))...) where s is
// NewMemStore(c.MaxKeysOrDefault()) or the shared store. Validate reports
// the same errors as New, naming the key at fault.
type Config struct {
	Key          *KeyConfig    `yaml:"key"`
	Lease        time.Duration `yaml:"lease" levee:"nonzero"`
	Window       time.Duration `yaml:"window" levee:"nonzero"`
	Store        string        `yaml:"store"`
	MaxKeys      int           `yaml:"max_keys" levee:"nonzero"`
	StoreTimeout time.Duration `yaml:"store_timeout" levee:"nonzero"`
	BusyRetry    time.Duration `yaml:"busy_retry" levee:"nonzero"`
}

// KeyConfig selects the identity; set at most one field. Empty means the
// message UUID.
type KeyConfig struct {
	Metadata    string `yaml:"metadata"`
	JSONPointer string `yaml:"json_pointer"`
}

// Store kinds of Config.Store.
const (
	StoreMemory = "memory"
	StoreShared = "shared"
)

// Shared reports whether the section asks for the service's shared store.
func (c Config) Shared() bool { return c.Store == StoreShared }

// MaxKeysOrDefault returns MaxKeys, or DefaultMaxKeys when it is 0.
func (c Config) MaxKeysOrDefault() int {
	if c.MaxKeys == 0 {
		return DefaultMaxKeys
	}
	return c.MaxKeys
}

// Validate checks c with the same rules as New and NewMemStore and
// reports every problem, each naming its key (a FieldError of
// internal/config, so a YAML error points at that key's line); errors
// wrap ErrInvalidConfig. A zero field means the default: in YAML an
// explicit zero (lease: 0) is rejected by the decoder, as the options
// reject it.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, levconfig.Field(key, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)))
	}
	switch c.Store {
	case "", StoreMemory, StoreShared:
	default:
		bad("store", "%q is not memory or shared", c.Store)
	}
	if c.MaxKeys < 0 {
		bad("max_keys", "%d must be positive", c.MaxKeys)
	}
	if c.MaxKeys != 0 && c.Shared() {
		bad("max_keys", "only for the memory store")
	}
	if _, err := c.keyFunc(); err != nil {
		key := "key"
		if k := c.Key; k != nil && (k.Metadata == "") != (k.JSONPointer == "") {
			key = "key.metadata"
			if k.JSONPointer != "" {
				key = "key.json_pointer"
			}
		}
		errs = append(errs, levconfig.Field(key, err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"lease", c.Lease}, {"window", c.Window}, {"store_timeout", c.StoreTimeout}, {"busy_retry", c.BusyRetry}} {
		if d.v < 0 {
			bad(d.name, "%v must be positive", d.v)
		}
	}
	return errors.Join(errs...)
}

func (c Config) keyFunc() (KeyFunc, error) {
	if c.Key == nil {
		return nil, nil
	}
	switch {
	case c.Key.Metadata != "" && c.Key.JSONPointer != "":
		return nil, fmt.Errorf("%w: set metadata or json_pointer, not both", ErrInvalidConfig)
	case c.Key.Metadata != "":
		return MetadataKey(c.Key.Metadata)
	case c.Key.JSONPointer != "":
		return JSONPointer(c.Key.JSONPointer)
	}
	return nil, fmt.Errorf("%w: set metadata or json_pointer", ErrInvalidConfig)
}

// Options returns the options c sets (not the store: see Config). Call it
// on a validated Config; an invalid key is reported by New.
func (c Config) Options() []Option {
	var opts []Option
	if fn, err := c.keyFunc(); err != nil {
		opts = append(opts, optionFunc(func(cfg *config) { cfg.errs = append(cfg.errs, err) }))
	} else if fn != nil {
		opts = append(opts, WithKeyFunc(fn))
	}
	if c.Lease != 0 {
		opts = append(opts, WithLease(c.Lease))
	}
	if c.Window != 0 {
		opts = append(opts, WithWindow(c.Window))
	}
	if c.StoreTimeout != 0 {
		opts = append(opts, WithStoreTimeout(c.StoreTimeout))
	}
	if c.BusyRetry != 0 {
		opts = append(opts, WithBusyRetry(c.BusyRetry))
	}
	return opts
}

// Label describes the settings that were set, for Stack.Describe.
func (c Config) Label() string {
	l := "store=" + StoreMemory
	if c.Shared() {
		l = "store=" + StoreShared
	}
	if k := c.Key; k != nil {
		if k.Metadata != "" {
			l += " key=metadata:" + k.Metadata
		} else if k.JSONPointer != "" {
			l += " key=json_pointer:" + k.JSONPointer
		}
	}
	if c.Lease != 0 {
		l += " lease=" + c.Lease.String()
	}
	if c.Window != 0 {
		l += " window=" + c.Window.String()
	}
	return l
}
