package pgstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/redact"
)

// Store is a dlqops.Store in PostgreSQL. It is safe for concurrent use, also
// by several processes sharing the database: claims use
// SELECT ... FOR UPDATE SKIP LOCKED plus a lease.
type Store struct {
	pool      *pgxpool.Pool
	ownsPool  bool
	schema    string // sanitized identifier
	table     string // sanitized schema.dead_letters
	batchRows int
	timeout   time.Duration
	closeOnce sync.Once
}

var _ dlqops.Store = (*Store)(nil)

// Option configures a Store.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	schema      string
	batchRows   int
	dialTimeout time.Duration
	timeout     time.Duration
	migrate     bool
}

// Defaults.
const (
	DefaultSchema      = "levee"
	DefaultBatchRows   = 1000
	DefaultDialTimeout = 5 * time.Second
	maxBatchRows       = 2500 // 20 parameters a row, 65535 a statement
)

// WithSchema sets the PostgreSQL schema holding the tables (created when
// missing). Default "levee"; it must be a plain identifier
// ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes).
func WithSchema(name string) Option { return optionFunc(func(c *config) { c.schema = name }) }

// WithBatchRows sets how many rows one INSERT carries when Add gets many
// letters. Default 1000; 1 inserts row by row; at most 2500.
func WithBatchRows(n int) Option { return optionFunc(func(c *config) { c.batchRows = n }) }

// WithDialTimeout bounds the connection check of Open and New. Default 5s;
// it must be positive.
func WithDialTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.dialTimeout = d })
}

// WithTimeout sets the deadline of every Store and Attempts method call
// (its statements or transaction): when it passes, pgx cancels the query
// and the call returns an error wrapping dlqops.ErrStore. Open also sets it as
// the connections' lock_timeout and statement_timeout, unless the URL sets
// them, so the server gives up too. Default dlqops.DefaultStoreTimeout (5s);
// it must be positive. FromConfig passes the `store: timeout` key.
func WithTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.timeout = d }) }

// WithoutMigrate skips the schema migrations in New and Open (run Migrate
// yourself, e.g. from a deploy job). Default: migrate.
func WithoutMigrate() Option { return optionFunc(func(c *config) { c.migrate = false }) }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func newConfig(opts []Option) (config, error) {
	c := config{schema: DefaultSchema, batchRows: DefaultBatchRows, dialTimeout: DefaultDialTimeout,
		timeout: dlqops.DefaultStoreTimeout, migrate: true}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	switch {
	case CheckSchema(c.schema) != nil:
		return c, CheckSchema(c.schema)
	case c.batchRows < 1 || c.batchRows > maxBatchRows:
		return c, fmt.Errorf("%w: batch rows %d not in 1..%d", ErrInvalidConfig, c.batchRows, maxBatchRows)
	case c.dialTimeout <= 0:
		return c, fmt.Errorf("%w: dial timeout %s must be positive", ErrInvalidConfig, c.dialTimeout)
	case c.timeout <= 0:
		return c, fmt.Errorf("%w: timeout %s must be positive", ErrInvalidConfig, c.timeout)
	}
	return c, nil
}

// Errors.
var (
	// ErrInvalidConfig is wrapped for invalid options or URLs.
	ErrInvalidConfig = levee.InvalidConfigSentinel("levee/pgstore: invalid configuration")
	// ErrUnreachable is wrapped (with dlqops.ErrStore) when the server cannot
	// be reached within the dial timeout.
	ErrUnreachable = errors.New("levee/pgstore: postgres unreachable")
)

// Open connects to the database at url (a postgres:// URL or a DSN),
// checks the connection, runs the migrations and returns a Store that
// owns its pool (Close closes it). Its connections get the store timeout
// (WithTimeout) as lock_timeout and statement_timeout unless the URL sets
// them.
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

// CheckSchema returns the error Open gives for schema when it is not a
// plain identifier of at most 63 bytes (letters, digits, _), wrapping
// ErrInvalidConfig. levee config check runs it on the store section's
// schema.
func CheckSchema(schema string) error {
	if !identRE.MatchString(schema) {
		return fmt.Errorf("%w: schema %q is not a plain identifier", ErrInvalidConfig, schema)
	}
	return nil
}

// CheckURL parses url as Open does, without connecting: a URL pgx refuses
// (a mysql:// scheme, sslmode=bogus) gives the error Open would, wrapping
// ErrInvalidConfig, with the password redacted. levee config check runs it
// on the store section's url.
func CheckURL(url string) error {
	_, err := parseURL(url)
	return redact.Error(err, url)
}

// parseURL is the pool configuration of url, as pgx parses it.
func parseURL(url string) (*pgxpool.Config, error) {
	if strings.Contains(url, "://") {
		if _, err := redact.ParseURL(url); err != nil {
			return nil, fmt.Errorf("%w: store url: %w", ErrInvalidConfig, err)
		}
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: store url: %w", ErrInvalidConfig, err)
	}
	return pc, nil
}

func open(ctx context.Context, url string, opts []Option) (*Store, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	pc, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	ms := strconv.FormatInt(max(1, c.timeout.Milliseconds()), 10) // 0 would turn them off
	for _, p := range []string{"lock_timeout", "statement_timeout"} {
		if _, ok := pc.ConnConfig.RuntimeParams[p]; !ok {
			pc.ConnConfig.RuntimeParams[p] = ms
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s, err := newStore(ctx, pool, c)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownsPool = true
	return s, nil
}

// New returns a Store on an existing pool (Close leaves the pool open),
// after checking the connection and running the migrations.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", ErrInvalidConfig)
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newStore(ctx, pool, c)
}

func newStore(ctx context.Context, pool *pgxpool.Pool, c config) (*Store, error) {
	s := &Store{pool: pool, batchRows: c.batchRows, timeout: c.timeout}
	s.schema = pgx.Identifier{c.schema}.Sanitize()
	s.table = pgx.Identifier{c.schema, "dead_letters"}.Sanitize()
	pctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		cc := pool.Config().ConnConfig
		return nil, fmt.Errorf("%w: %w at %s:%d (database %q): %w", dlqops.ErrStore, ErrUnreachable, cc.Host, cc.Port, cc.Database, err)
	}
	if c.migrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// deadline bounds one method call by the store timeout.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Schema returns the schema as a quoted SQL identifier.
func (s *Store) Schema() string { return s.schema }

// Pool returns the connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool when the Store opened it; it is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.ownsPool {
			s.pool.Close()
		}
	})
	return nil
}

// storeErr wraps a backend error in dlqops.ErrStore.
func storeErr(op string, err error) error {
	return fmt.Errorf("%w: pgstore %s: %w", dlqops.ErrStore, op, err)
}
