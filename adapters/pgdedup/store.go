package pgdedup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
)

// Defaults of New.
const (
	DefaultTable      = "levee_dedup"
	DefaultPruneEvery = time.Minute
)

// ErrInvalidConfig is wrapped by New's configuration errors; errors.Is
// matches it with levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/pgdedup: invalid configuration")

// ErrNoTicket is returned by MarkDone and MarkDoneSQL when the context
// carries no dedup.Ticket: the handler does not run under a dedup
// middleware whose store is this inbox.
var ErrNoTicket = errors.New("levee/pgdedup: no dedup ticket in the context (is the handler behind dedup with the inbox store?)")

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	table      string
	pruneEvery time.Duration
	migrate    bool
}

// WithTable sets the table: one identifier, found through the
// connection's search path; default DefaultTable. Empty is an error.
func WithTable(name string) Option { return optionFunc(func(c *config) { c.table = name }) }

// WithPruneEvery sets how often the pruner deletes ended rows; default
// DefaultPruneEvery; 0 starts no pruner (call Prune yourself). Negative is
// an error.
func WithPruneEvery(d time.Duration) Option { return optionFunc(func(c *config) { c.pruneEvery = d }) }

// WithoutMigrate leaves the table alone: New does not create it.
func WithoutMigrate() Option { return optionFunc(func(c *config) { c.migrate = false }) }

// Store is the PostgreSQL inbox. Make one with New; Close stops its
// pruner (the pool stays the caller's).
type Store struct {
	pool  *pgxpool.Pool
	owned bool // Open made the pool: Close closes it
	table string
	q     queries

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a Store on pool, creating the table when missing (unless
// WithoutMigrate). Errors from options wrap ErrInvalidConfig.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	c := config{table: DefaultTable, pruneEvery: DefaultPruneEvery, migrate: true}
	for _, o := range opts {
		o.apply(&c)
	}
	switch {
	case pool == nil:
		return nil, fmt.Errorf("%w: nil pool", ErrInvalidConfig)
	case c.table == "":
		return nil, fmt.Errorf("%w: empty table name", ErrInvalidConfig)
	case c.pruneEvery < 0:
		return nil, fmt.Errorf("%w: prune every %v must not be negative", ErrInvalidConfig, c.pruneEvery)
	}
	s := &Store{pool: pool, table: pgx.Identifier{c.table}.Sanitize(), stop: make(chan struct{}), done: make(chan struct{})}
	s.q = newQueries(s.table)
	if c.migrate {
		if _, err := pool.Exec(ctx, s.q.create); err != nil {
			return nil, fmt.Errorf("levee/pgdedup: create %s: %w", s.table, err)
		}
	}
	if c.pruneEvery > 0 {
		go s.prune(c.pruneEvery)
	} else {
		close(s.done)
	}
	return s, nil
}

// Open connects to the database at url and returns a Store on a pool of
// its own, which Close closes. Errors from a bad URL wrap
// ErrInvalidConfig.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: url: %w", ErrInvalidConfig, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("levee/pgdedup: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("levee/pgdedup: %s:%d: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, err)
	}
	s, err := New(ctx, pool, opts...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// Table returns the table as a quoted SQL identifier.
func (s *Store) Table() string { return s.table }

// MarksInTransaction marks Store as a dedup.TxStore.
func (s *Store) MarksInTransaction() {}

// Claim implements dedup.Store in one statement.
func (s *Store) Claim(ctx context.Context, key string, token uint64, lease time.Duration) (dedup.Claim, error) {
	var (
		claimed   bool
		done      *bool
		remaining *int64
	)
	err := s.pool.QueryRow(ctx, s.q.claim, storeKey(key), int64(token), max(1, lease.Milliseconds())).Scan(&claimed, &done, &remaining)
	if err != nil {
		return dedup.Claim{}, wrapErr("claim", err)
	}
	switch {
	case claimed:
		return dedup.Claim{Status: dedup.StatusClaimed, TookOver: done != nil && !*done}, nil
	case done != nil && *done:
		return dedup.Claim{Status: dedup.StatusDone}, nil
	}
	c := dedup.Claim{Status: dedup.StatusBusy}
	if remaining != nil {
		c.Remaining = time.Duration(*remaining) * time.Millisecond
	}
	return c, nil
}

// Done implements dedup.Store in one statement.
func (s *Store) Done(ctx context.Context, key string, token uint64, window time.Duration) error {
	if _, err := s.pool.Exec(ctx, s.q.done, storeKey(key), int64(token), max(1, window.Milliseconds())); err != nil {
		return wrapErr("done", err)
	}
	return nil
}

// IsDone implements dedup.DoneChecker in one statement.
func (s *Store) IsDone(ctx context.Context, key string) (bool, error) {
	var done bool
	if err := s.pool.QueryRow(ctx, s.q.isDone, storeKey(key)).Scan(&done); err != nil {
		return false, wrapErr("is done", err)
	}
	return done, nil
}

// Release implements dedup.Store in one statement.
func (s *Store) Release(ctx context.Context, key string, token uint64) error {
	if _, err := s.pool.Exec(ctx, s.q.release, storeKey(key), int64(token)); err != nil {
		return wrapErr("release", err)
	}
	return nil
}

// MarkDone writes the done mark of the delivery in ctx (its dedup.Ticket)
// in tx and settles the ticket, so the middleware writes no mark of its
// own. It returns dedup.ErrAlreadyDone when another delivery of the same
// identity committed its mark (roll back: the work is done), ErrNoTicket
// without a ticket.
func (s *Store) MarkDone(ctx context.Context, tx pgx.Tx) error {
	t, ok := dedup.TicketFrom(ctx)
	if !ok {
		return ErrNoTicket
	}
	tag, err := tx.Exec(ctx, s.q.markTx, storeKey(t.Key()), int64(t.Token()), max(1, t.Window().Milliseconds()))
	if err != nil {
		return wrapErr("mark done", err)
	}
	return settle(t, tag.RowsAffected())
}

// MarkDoneSQL is MarkDone for a database/sql transaction (pgx's stdlib
// driver or lib/pq).
func (s *Store) MarkDoneSQL(ctx context.Context, tx *sql.Tx) error {
	t, ok := dedup.TicketFrom(ctx)
	if !ok {
		return ErrNoTicket
	}
	res, err := tx.ExecContext(ctx, s.q.markTx, storeKey(t.Key()), int64(t.Token()), max(1, t.Window().Milliseconds()))
	if err != nil {
		return wrapErr("mark done", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr("mark done", err)
	}
	return settle(t, n)
}

func settle(t *dedup.Ticket, rows int64) error {
	if rows == 0 {
		return dedup.ErrAlreadyDone
	}
	t.Settle()
	return nil
}

// Prune deletes the rows whose claim or window ended and returns how many.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, s.q.prune)
	if err != nil {
		return 0, fmt.Errorf("levee/pgdedup: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (s *Store) prune(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_, _ = s.Prune(ctx) // the next tick tries again
			cancel()
		}
	}
}

// Close stops the pruner and, for a Store from Open, closes its pool (a
// Store from New leaves the caller's pool open). It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if s.owned {
			s.pool.Close()
		}
	})
	<-s.done
	return nil
}
