// Package postgres is Levee's PostgreSQL transport (watermill-sql v4, queue
// schema: one table per topic). Concurrency N runs N pollers that lock
// different rows with SKIP LOCKED; a partial index over unacked rows keeps
// the polls fast; a Nack carrying levee_retry_after is redelivered after
// the delay by a row inserted in the message's own transaction
// (levee_redeliver_at).
//
// The adapters facade builds it from `transport: {kind: postgres,
// postgres: {...}}`. The publisher and the subscriber New returns are safe
// for concurrent use; their Close is idempotent.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee/adapters/internal/fanin"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/redact"
)

// Kind is the transport kind in the `transport` section.
const Kind = "postgres"

// DefaultPollInterval is the wait between polls of an empty table when
// Config.PollInterval is zero.
const DefaultPollInterval = 100 * time.Millisecond

// Config is the `transport.postgres` section (watermill-sql v4,
// queue schema: one table per topic, rows locked with SKIP LOCKED so
// several consumers work on different rows).
type Config struct {
	// URL is a libpq connection string or URL, e.g.
	// postgres://postgres@127.0.0.1:5432/test. Required.
	URL string `yaml:"url"`
	// PollInterval is the wait between polls of an empty table. Zero means
	// 100ms (in YAML remove the key: an explicit 0 is an error).
	PollInterval time.Duration `yaml:"poll_interval" levee:"nonzero"`
	// MaxConns caps the transport's connections. Up to PublishConns of
	// them are the publisher's (max_conns − concurrency, at least 1), so a
	// handler's publish (a result, a dead letter) never waits for a
	// connection only an ack can free; the rest are the subscriber's. Every
	// in-flight message holds one of those until it is acked, so for every
	// handler to have concurrency messages in flight it should be at least
	// concurrency × subscribed topics + PublishConns. Zero means 8 ×
	// concurrency + 4 (in YAML remove the key: an explicit 0 is an error).
	MaxConns int `yaml:"max_conns" levee:"nonzero"`
	// DeleteOnAck deletes a row when its message is acked, instead of
	// marking it acked (watermill-sql's default, which keeps every message
	// in the table forever). Either way unacked rows are found through a
	// partial index, so acked rows do not slow the polls down.
	DeleteOnAck bool `yaml:"delete_on_ack"`
}

// Validate checks the section against the settings (the transport runs in
// queue mode: a consumer group is refused) and parses the URL as New does
// (pgx's ParseConfig, which reads the PG* environment variables and the
// files the URL names, such as sslrootcert). Errors wrap
// transport.ErrInvalidConfig and name the key (postgres.url, ...).
func (c Config) Validate(s transport.Settings) error {
	if c.URL == "" {
		return kit.Invalid("postgres.url", "kind postgres needs a url (postgres://user@host:5432/db)")
	}
	// Parsed as New parses it (pgx's ParseConfig): a URL pgx refuses (a
	// mysql:// scheme, sslmode=bogus) is an error of the file, not of the
	// first connection.
	if _, err := parseURL(c.URL); err != nil {
		return kit.Invalid("postgres.url", "%v", err)
	}
	if c.PollInterval < 0 {
		return kit.Invalid("postgres.poll_interval", "must not be negative, got %s", c.PollInterval)
	}
	n := s.WithDefaults().Concurrency
	if c.MaxConns < 0 || (c.MaxConns > 0 && c.MaxConns < n+1) {
		return kit.Invalid("postgres.max_conns", "%d is too small: every in-flight message holds a connection (need at least concurrency + 1 = %d)", c.MaxConns, n+1)
	}
	if s.ConsumerGroup != "" {
		return kit.Invalid("consumer_group", "postgres runs in queue mode (one table per topic) and has no consumer groups")
	}
	return nil
}

func (c Config) pollInterval() time.Duration {
	if c.PollInterval == 0 {
		return DefaultPollInterval
	}
	return c.PollInterval
}

func (c Config) maxConns(s transport.Settings) int {
	if c.MaxConns > 0 {
		return c.MaxConns
	}
	return 8*s.WithDefaults().Concurrency + 4
}

// PublishConns is the most connections of max_conns the publisher keeps
// for itself.
const PublishConns = 4

// Conns splits max_conns between the publisher and the subscriber: the
// publisher gets what is left above concurrency, between 1 and
// PublishConns, so the subscriber always has concurrency connections.
// Each message in flight holds one of the subscriber's, whatever its
// topic, so subscriber is the most messages in flight across the
// transport's topics.
func (c Config) Conns(s transport.Settings) (publisher, subscriber int) {
	total, n := c.maxConns(s), s.WithDefaults().Concurrency
	publisher = min(max(total-n, 1), PublishConns)
	return publisher, total - publisher
}

// Capabilities returns what the transport does with settings s: the ack
// deadline is watermill-sql's AckDeadline, delays are native.
func (c Config) Capabilities(s transport.Settings) transport.Capabilities {
	s = s.WithDefaults()
	return transport.Capabilities{Kind: Kind, System: "postgresql", MaxInFlight: s.Concurrency, AckDeadline: s.AckDeadline, NativeDelay: true}
}

// New validates c, probes the server within the dial timeout, opens the
// pool and pings it, and returns the transport. Errors wrap
// transport.ErrInvalidConfig (also for a database that does not exist),
// ErrUnreachable (naming the address) or ErrAuth. New does not retry.
func New(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	s = s.WithDefaults()
	if err := c.Validate(s); err != nil {
		return nil, err
	}
	p, err := build(ctx, c, s)
	return p, redact.Error(err, c.URL)
}

// parseURL parses a postgres:// URL or a libpq DSN. A URL is
// checked by redact.ParseURL first: pgx would accept a password with an
// unencoded '/' as part of the host or database, and its errors quote
// what it could not parse.
func parseURL(raw string) (*pgxpool.Config, error) {
	if strings.Contains(raw, "://") {
		if _, err := redact.ParseURL(raw); err != nil {
			return nil, err
		}
	}
	pcfg, err := pgxpool.ParseConfig(raw)
	return pcfg, redact.Error(err, raw)
}

func build(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	pcfg, err := parseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("levee/postgres: %w", kit.Invalid("postgres.url", "%v", err))
	}
	addr := fmt.Sprintf("%s:%d", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port)
	if err := kit.Probe(ctx, Kind, addr, s.DialTimeout); err != nil {
		return nil, err
	}
	n := s.Concurrency
	pool, pubPool, err := openPools(ctx, c, s, pcfg, addr)
	if err != nil {
		return nil, err
	}
	closePools := func() { pubPool.Close(); pool.Close() }
	db, pubDB := wsql.BeginnerFromPgx(pool), wsql.BeginnerFromPgx(pubPool)
	schema := skipLockedQueueSchema{PostgreSQLQueueSchema: wsql.PostgreSQLQueueSchema{
		GeneratePayloadType: func(string) string { return "BYTEA" },
		SubscribeBatchSize:  1,
		// Rows requeued with a delay (delay.go) wait until it passed.
		GenerateWhereClause: func(wsql.GenerateWhereClauseParams) (string, []any) { return redeliverAtWhere, nil },
	}}
	ackDeadline := s.AckDeadline
	pub, err := wsql.NewPublisher(pubDB, wsql.PublisherConfig{SchemaAdapter: schema, AutoInitializeSchema: true}, s.Logger)
	if err != nil {
		closePools()
		return nil, fmt.Errorf("levee/postgres: publisher at %s: %w", addr, err)
	}
	// The rows' transactions are guarded (tx.go): a row given up at its
	// ack deadline is committed while its handler may still use them.
	sub, err := wsql.NewSubscriber(guardedBeginner{Beginner: db, rowsWait: ackDeadline}, wsql.SubscriberConfig{
		AckDeadline:      &ackDeadline,
		PollInterval:     c.pollInterval(),
		ResendInterval:   c.pollInterval(),
		BackoffManager:   newClosingBackoff(c.pollInterval()),
		SchemaAdapter:    schema,
		OffsetsAdapter:   wsql.PostgreSQLQueueOffsetsAdapter{DeleteOnAck: c.DeleteOnAck},
		InitializeSchema: true,
	}, s.Logger)
	if err != nil {
		closePools()
		return nil, fmt.Errorf("levee/postgres: subscriber at %s: %w", addr, err)
	}
	delayed := newDelaySubscriber(sub, schema, s.Logger)
	subs := make([]message.Subscriber, n)
	for i := range subs {
		subs[i] = delayed
	}
	fan, err := fanin.New(subs...)
	if err != nil {
		closePools()
		return nil, err
	}
	fan.TrustUndecodable() // UnmarshalMessage sets it, and drops a producer's
	return &transport.Parts{
		Publisher:    pub,
		Subscriber:   fan,
		Capabilities: c.Capabilities(s),
		Closers:      []func() error{func() error { closePools(); return nil }},
		DeleteTopics: dropTables(pubPool, schema),
		CheckTopic:   CheckTopic,
	}, nil
}

// openPools opens the subscriber's pool and the publisher's within
// max_conns (Config.Conns) and pings the server. Each in-flight message
// holds one connection (its row lock and transaction) until Ack, and a
// handler may publish before it acks: from one pool, rows in flight on
// every connection would leave its publish waiting for an ack that waits
// for the publish. Errors name the address: ErrAuth, ErrInvalidConfig for
// a database that does not exist, else ErrUnreachable.
func openPools(ctx context.Context, c Config, s transport.Settings, pcfg *pgxpool.Config, addr string) (sub, pub *pgxpool.Pool, err error) {
	pcfg.ConnConfig.ConnectTimeout = s.DialTimeout
	pubConns, subConns := c.Conns(s)
	pcfg.MaxConns = int32(subConns)
	sub, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("levee/postgres: pool for %s: %w", addr, err)
	}
	pubCfg := pcfg.Copy()
	pubCfg.MaxConns = int32(pubConns)
	pub, err = pgxpool.NewWithConfig(ctx, pubCfg)
	if err != nil {
		sub.Close()
		return nil, nil, fmt.Errorf("levee/postgres: pool for %s: %w", addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	err = sub.Ping(pctx)
	cancel()
	if err == nil {
		return sub, pub, nil
	}
	pub.Close()
	sub.Close()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
		return nil, nil, fmt.Errorf("%w: postgres at %s: %v (check the user and password in transport.postgres.url)", transport.ErrAuth, addr, err)
	}
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
		return nil, nil, fmt.Errorf("%w: postgres at %s: %v (the database in transport.postgres.url does not exist)", transport.ErrInvalidConfig, addr, err)
	}
	return nil, nil, kit.Unreachable(Kind, addr, err)
}

// dropTables returns the transport's DeleteTopics: queue mode keeps a
// topic's messages and acks in one table, dropped if it exists.
func dropTables(pool *pgxpool.Pool, schema skipLockedQueueSchema) func(context.Context, []string) error {
	return func(ctx context.Context, topics []string) error {
		for _, topic := range topics {
			if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+schema.MessagesTable(topic)); err != nil {
				return fmt.Errorf("levee/postgres: drop the table of %q: %w", topic, err)
			}
		}
		return nil
	}
}
