package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/redact"
	"github.com/redis/go-redis/v9"
)

// Store is a dlqops.Store in Redis. It is safe for concurrent use, also by
// several processes sharing the server: every change is one Lua script,
// and a claim checks and sets a letter's owner and lease in the same
// script.
type Store struct {
	client     *redis.Client
	ownsClient bool
	prefix     string // the configured prefix, e.g. "levee"
	kp         string // the key prefix of the dead letters, "<prefix>:dlq:"
	batch      int
	timeout    time.Duration
	pageBudget int // index entries one Page call walks (pageBudget; tests lower it)
	closeOnce  sync.Once
}

var _ dlqops.Store = (*Store)(nil)

// Option configures a Store.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	prefix      string
	batch       int
	dialTimeout time.Duration
	timeout     time.Duration
}

// Defaults.
const (
	DefaultPrefix      = "levee"
	DefaultBatchSize   = 500
	DefaultDialTimeout = 5 * time.Second
	maxBatchSize       = 10000
)

// WithPrefix sets the prefix of every key the store writes
// ("<prefix>:dlq:..."). Default "levee". Segments of letters, digits and
// _ . - { } separated by ':', at most 64 bytes; no segment may be "dlq" or
// "attempts", so two stores with different prefixes never share a key.
func WithPrefix(p string) Option { return optionFunc(func(c *config) { c.prefix = p }) }

// WithBatchSize sets how many letters one Add script carries when Add gets
// many. Default 500; 1 adds letter by letter; at most 10000 (a script
// blocks the server while it runs).
func WithBatchSize(n int) Option { return optionFunc(func(c *config) { c.batch = n }) }

// WithDialTimeout bounds the connection check of Open and New, and the
// dial of each connection Open's client makes. Default 5s; it must be
// positive.
func WithDialTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.dialTimeout = d })
}

// WithTimeout sets the deadline of every command or script the store
// sends (a List or Prune over many letters sends several, each bounded):
// when it passes, the call returns an error wrapping dlqops.ErrStore. Open
// makes its client honour context deadlines (ContextTimeoutEnabled); a
// client given to New keeps its own settings, and with
// ContextTimeoutEnabled off go-redis bounds a command by its ReadTimeout
// instead. Default dlqops.DefaultStoreTimeout (5s); it must be positive.
// dlqstore.FromConfig passes the `store: timeout` key.
func WithTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.timeout = d }) }

func newConfig(opts []Option) (config, error) {
	c := config{prefix: DefaultPrefix, batch: DefaultBatchSize, dialTimeout: DefaultDialTimeout,
		timeout: dlqops.DefaultStoreTimeout}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if err := checkPrefix(c.prefix); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	switch {
	case c.batch < 1 || c.batch > maxBatchSize:
		return c, fmt.Errorf("%w: batch size %d not in 1..%d", ErrInvalidConfig, c.batch, maxBatchSize)
	case c.dialTimeout <= 0:
		return c, fmt.Errorf("%w: dial timeout %s must be positive", ErrInvalidConfig, c.dialTimeout)
	case c.timeout <= 0:
		return c, fmt.Errorf("%w: timeout %s must be positive", ErrInvalidConfig, c.timeout)
	}
	return c, nil
}

// checkPrefix is the prefix rule, the one dlqops.StoreConfig applies to the
// YAML `store.prefix`.
func checkPrefix(p string) error {
	if p == "" {
		return errors.New("empty prefix")
	}
	return dlqops.CheckKeyPrefix(p)
}

// Errors.
var (
	// ErrInvalidConfig is wrapped for invalid options or URLs.
	ErrInvalidConfig = levee.InvalidConfigSentinel("levee/redisstore: invalid configuration")
	// ErrUnreachable is wrapped (with dlqops.ErrStore) when the server cannot
	// be reached within the dial timeout.
	ErrUnreachable = errors.New("levee/redisstore: redis unreachable")
)

// Open connects to the server at url (redis://[user:password@]host:port/db,
// rediss:// for TLS, unix:///path.sock; go-redis's ParseURL options such
// as ?dial_timeout=3s apply), checks the connection within the dial
// timeout, and returns a Store that owns its client (Close closes it).
// An unreachable server gives an error wrapping ErrUnreachable and
// dlqops.ErrStore that names the address.
//
// No error carries the password: a URL that does not parse, or parses with
// the password outside the userinfo (an unencoded '/', '?' or '#'), is
// rejected with the URL redacted, and every later error is redacted too.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	s, err := open(ctx, url, opts)
	if err != nil {
		return nil, redact.Error(err, url)
	}
	return s, nil
}

// CheckURL parses url as Open does, without connecting: a URL go-redis
// refuses (another scheme, a database that is not a number) gives the
// error Open would, wrapping ErrInvalidConfig, with the password redacted.
// levee config check runs it on the store section's url.
func CheckURL(url string) error {
	_, err := parseURL(url)
	return redact.Error(err, url)
}

// parseURL is the client options of url, as go-redis parses it.
func parseURL(url string) (*redis.Options, error) {
	if _, err := redact.ParseURL(url); err != nil {
		return nil, fmt.Errorf("%w: store url: %w", ErrInvalidConfig, err)
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w: store url: %w", ErrInvalidConfig, err)
	}
	return ro, nil
}

func open(ctx context.Context, url string, opts []Option) (*Store, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	ro, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	ro.DialTimeout = c.dialTimeout
	ro.ContextTimeoutEnabled = true // the store timeout (WithTimeout) bounds every command
	client := redis.NewClient(ro)
	s, err := newStore(ctx, client, c)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.ownsClient = true
	return s, nil
}

// New returns a Store on an existing client (Close leaves it open), after
// checking the connection within the dial timeout.
func New(ctx context.Context, client *redis.Client, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newStore(ctx, client, c)
}

func newStore(ctx context.Context, client *redis.Client, c config) (*Store, error) {
	s := &Store{client: client, prefix: c.prefix, kp: c.prefix + ":dlq:", batch: c.batch, timeout: c.timeout, pageBudget: pageBudget}
	pctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		o := client.Options()
		if pctx.Err() != nil { // no answer in time, not a refusal
			return nil, fmt.Errorf("%w: %w at %s (db %d) within %s: %w", dlqops.ErrStore, ErrUnreachable, o.Addr, o.DB, c.dialTimeout, err)
		}
		return nil, fmt.Errorf("%w: %w at %s (db %d): %w", dlqops.ErrStore, ErrUnreachable, o.Addr, o.DB, err)
	}
	return s, nil
}

// deadline bounds one command or script by the store timeout.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Prefix returns the configured key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Client returns the Redis client.
func (s *Store) Client() *redis.Client { return s.client }

// Close closes the client when the Store opened it; it is idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.ownsClient {
			err = s.client.Close()
		}
	})
	return err
}

// storeErr wraps a backend error in dlqops.ErrStore.
func storeErr(op string, err error) error {
	return fmt.Errorf("%w: redisstore %s: %w", dlqops.ErrStore, op, err)
}
