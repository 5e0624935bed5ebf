package dlq

import (
	"fmt"
	"time"

	lconfig "github.com/levee-dev/levee/internal/config"
)

// Store kinds of StoreConfig.Kind.
const (
	StoreKindMemory   = "memory"
	StoreKindPostgres = "postgres"
)

// StoreConfig is the YAML top-level `store` section: where the DLQ monitor
// records dead letters and where `levee dlq` reads them.
//
//	store:
//	  kind: postgres                      # memory (default) or postgres
//	  url: postgres://postgres@127.0.0.1:5432/levee?sslmode=disable
//	  schema: levee                       # postgres schema (default levee)
//	  retention: {max_age: 720h, max_count: 1000000}
//
// The PostgreSQL store lives in adapters/pgstore (core packages import no
// database client); pgstore.FromConfig builds either kind.
type StoreConfig struct {
	// Kind is memory (the default when empty) or postgres.
	Kind string `yaml:"kind"`
	// URL is the PostgreSQL URL or DSN; required for postgres, rejected
	// for memory.
	URL string `yaml:"url"`
	// Schema is the PostgreSQL schema; empty means "levee".
	Schema string `yaml:"schema"`
	// Retention bounds what the store keeps (applied by `levee dlq prune`
	// and by whoever calls Store.Prune).
	Retention RetentionConfig `yaml:"retention"`
}

// RetentionConfig is the `store.retention` section.
type RetentionConfig struct {
	// MaxAge deletes letters that failed longer ago; 0 keeps them.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxCount keeps at most this many letters; 0 means no bound.
	MaxCount int `yaml:"max_count"`
}

// Policy returns the section as a Retention for Store.Prune.
func (r RetentionConfig) Policy() Retention { return Retention(r) }

// StoreKind returns the kind, "memory" when empty.
func (c StoreConfig) StoreKind() string {
	if c.Kind == "" {
		return StoreKindMemory
	}
	return c.Kind
}

// Validate checks the section; errors point at the key (lconfig.Field) and
// wrap ErrInvalidConfig.
func (c StoreConfig) Validate() error {
	wrap := func(key, format string, args ...any) error {
		return lconfig.Field(key, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	switch c.StoreKind() {
	case StoreKindMemory:
		if c.URL != "" {
			return wrap("url", "a memory store takes no url")
		}
	case StoreKindPostgres:
		if c.URL == "" {
			return wrap("url", "a postgres store needs a url (postgres://user@host:5432/db)")
		}
	default:
		return wrap("kind", "unknown store kind %q (want memory or postgres)", c.Kind)
	}
	if c.Retention.MaxAge < 0 {
		return wrap("retention.max_age", "must not be negative")
	}
	if c.Retention.MaxCount < 0 {
		return wrap("retention.max_count", "must not be negative")
	}
	return nil
}
