package dlqops

import (
	"fmt"
	"strings"
	"time"

	lconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/redact"
)

// Store kinds of StoreConfig.Kind.
const (
	StoreKindMemory   = "memory"
	StoreKindPostgres = "postgres"
	StoreKindRedis    = "redis"
)

// StoreConfig is the YAML top-level `store` section: where the DLQ monitor
// records dead letters and where `levee dlq` reads them.
//
//	store:
//	  kind: postgres                      # memory (default), postgres or redis
//	  url: postgres://postgres@127.0.0.1:5432/levee?sslmode=disable
//	  schema: levee                       # postgres schema (default levee)
//	  retention: {max_age: 720h, max_count: 1000000}
//	  timeout: 5s                         # deadline of every store call (default 5s)
//	  replay_topics: [orders, payments]   # where `levee dlq replay` may publish
//
//	store:
//	  kind: redis
//	  url: redis://127.0.0.1:6379/0       # redis://, rediss:// (TLS) or unix://
//	  prefix: levee                       # key prefix (default levee)
//
// The PostgreSQL and Redis stores live in adapters/pgstore and
// adapters/redisstore (core packages import no database client);
// adapters/dlqstore.FromConfig builds any kind.
type StoreConfig struct {
	// Kind is memory (the default when empty), postgres or redis.
	Kind string `yaml:"kind"`
	// URL is the PostgreSQL URL or DSN, or the Redis URL
	// (redis://[user:password@]host:port/db, rediss:// for TLS, or
	// unix:///path.sock); required for postgres and redis, rejected for
	// memory.
	URL string `yaml:"url"`
	// Schema is the PostgreSQL schema; empty means "levee". Only for
	// postgres.
	Schema string `yaml:"schema"`
	// Prefix starts every Redis key of the store; empty means "levee".
	// Only for redis: segments of letters, digits and _ . - { } separated
	// by ':', at most 64 bytes, no segment "dlq" or "attempts" (so two
	// prefixes never share a key).
	Prefix string `yaml:"prefix"`
	// Retention bounds what the store keeps (applied by `levee dlq prune`
	// and by whoever calls Store.Prune).
	Retention RetentionConfig `yaml:"retention"`
	// ReplayTopics are the topics `levee dlq replay` may publish to (with
	// its --allow-topic flags; see WithReplayTopics). Empty means the
	// Replayer's default: a letter recorded from "T.dlq" may go back to T
	// only.
	ReplayTopics []string `yaml:"replay_topics"`
	// Timeout is the deadline of every call to the store's server (one
	// statement or transaction in PostgreSQL, one script or command in
	// Redis), and of one Monitor.Handle (WithStoreTimeout). Nil (no
	// key) means DefaultStoreTimeout; zero or negative is invalid: a
	// store call without a deadline can hang the monitor and its shutdown.
	Timeout *time.Duration `yaml:"timeout"`
}

// DefaultStoreTimeout is the deadline of a store call when none is
// configured (StoreConfig.Timeout, the stores' WithTimeout options,
// WithStoreTimeout).
const DefaultStoreTimeout = 5 * time.Second

// StoreTimeout returns Timeout, or DefaultStoreTimeout when it is not set.
func (c StoreConfig) StoreTimeout() time.Duration {
	if c.Timeout == nil {
		return DefaultStoreTimeout
	}
	return *c.Timeout
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
	kind := c.StoreKind()
	switch kind {
	case StoreKindMemory:
		if c.URL != "" {
			return wrap("url", "a memory store takes no url")
		}
	case StoreKindPostgres:
		if c.URL == "" {
			return wrap("url", "a postgres store needs a url (postgres://user@host:5432/db)")
		}
		if strings.Contains(c.URL, "://") {
			if _, err := redact.ParseURL(c.URL); err != nil {
				return wrap("url", "%v", err)
			}
		}
	case StoreKindRedis:
		if c.URL == "" {
			return wrap("url", "a redis store needs a url (redis://host:6379/0)")
		}
		if err := checkRedisURL(c.URL); err != nil {
			return wrap("url", "%v", err)
		}
		if c.Schema != "" {
			return wrap("schema", "schema is for postgres; a redis store takes prefix")
		}
		if c.Prefix != "" {
			if err := CheckKeyPrefix(c.Prefix); err != nil {
				return wrap("prefix", "%v", err)
			}
		}
	default:
		return wrap("kind", "unknown store kind %q (want memory, postgres or redis)", c.Kind)
	}
	if kind != StoreKindRedis && c.Prefix != "" {
		return wrap("prefix", "prefix is for redis; a %s store takes none", kind)
	}
	if c.Timeout != nil && *c.Timeout <= 0 {
		return wrap("timeout", "%s: must be positive (every store call needs a deadline; omit the key for the default %s)",
			*c.Timeout, DefaultStoreTimeout)
	}
	if c.Retention.MaxAge < 0 {
		return wrap("retention.max_age", "must not be negative")
	}
	if c.Retention.MaxCount < 0 {
		return wrap("retention.max_count", "must not be negative")
	}
	for i, topic := range c.ReplayTopics {
		if err := checkReplayTopic(topic); err != nil {
			return wrap("replay_topics", "entry %d: %v", i+1, err)
		}
	}
	return nil
}

// checkRedisURL accepts what go-redis's ParseURL accepts in shape: a
// redis:// or rediss:// URL with a host, or a unix:// URL with a path.
// The full parse (db number, options) happens when the store opens.
func checkRedisURL(raw string) error {
	u, err := redact.ParseURL(raw)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("url %q has no host (want redis://host:6379/0)", redact.URL(raw))
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("url %q has no socket path (want unix:///path/redis.sock)", redact.URL(raw))
		}
	default:
		return fmt.Errorf("url scheme %q: want redis://, rediss:// or unix://", u.Scheme)
	}
	return nil
}

// CheckKeyPrefix checks a non-empty key prefix of a store that namespaces
// its keys (the Redis store's `store.prefix` and redisstore.WithPrefix): at
// most 64 bytes, segments separated by ':', none empty or reserved ("dlq",
// "attempts"), letters, digits and _ . - { } only.
func CheckKeyPrefix(p string) error {
	if len(p) > 64 {
		return fmt.Errorf("prefix %q longer than 64 bytes", p)
	}
	for seg := range strings.SplitSeq(p, ":") {
		if seg == "" {
			return fmt.Errorf("prefix %q has an empty segment", p)
		}
		if seg == "dlq" || seg == "attempts" {
			return fmt.Errorf("prefix %q uses the reserved segment %q", p, seg)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-{}", r)) {
				return fmt.Errorf("prefix %q: character %q not allowed (letters, digits, _ . - { } and : between segments)", p, r)
			}
		}
	}
	return nil
}
