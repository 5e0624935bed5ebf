package adapters

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/levee-dev/levee/internal/redact"
)

// parsePostgresURL parses a postgres:// URL or a libpq DSN. A URL is
// checked by redact.ParseURL first: pgx would accept a password with an
// unencoded '/' as part of the host or database, and its errors quote
// what it could not parse.
func parsePostgresURL(raw string) (*pgxpool.Config, error) {
	if strings.Contains(raw, "://") {
		if _, err := redact.ParseURL(raw); err != nil {
			return nil, err
		}
	}
	pcfg, err := pgxpool.ParseConfig(raw)
	return pcfg, redact.Error(err, raw)
}

func buildPostgres(ctx context.Context, o *options) (*built, error) {
	tc := o.tc
	pcfg, err := parsePostgresURL(tc.Postgres.URL)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", invalid("postgres.url", "%v", err))
	}
	addr := fmt.Sprintf("%s:%d", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port)
	if err := probe(ctx, KindPostgres, addr, tc.dialTimeout()); err != nil {
		return nil, err
	}
	n := tc.concurrency()
	pcfg.ConnConfig.ConnectTimeout = tc.dialTimeout()
	// Each in-flight message holds one connection (its row lock and
	// transaction) until Ack; polling and publishing need a few more.
	pcfg.MaxConns = int32(tc.postgresMaxConns())
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres at %s: %w", addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, tc.dialTimeout())
	err = pool.Ping(pctx)
	cancel()
	if err != nil {
		pool.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
			return nil, fmt.Errorf("%w: postgres at %s: %v (check the user and password in transport.postgres.url)", ErrAuth, addr, err)
		}
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
			return nil, fmt.Errorf("%w: postgres at %s: %v (the database in transport.postgres.url does not exist)", ErrInvalidConfig, addr, err)
		}
		return nil, unreachable(KindPostgres, addr, err)
	}
	db := wsql.BeginnerFromPgx(pool)
	schema := skipLockedQueueSchema{PostgreSQLQueueSchema: wsql.PostgreSQLQueueSchema{
		GeneratePayloadType: func(string) string { return "BYTEA" },
		SubscribeBatchSize:  1,
		// Rows requeued with a delay (pgdelay.go) wait until it passed.
		GenerateWhereClause: func(wsql.GenerateWhereClauseParams) (string, []any) { return pgRedeliverAtWhere, nil },
	}}
	ackDeadline := tc.ackDeadline()
	pub, err := wsql.NewPublisher(db, wsql.PublisherConfig{SchemaAdapter: schema, AutoInitializeSchema: true}, o.logger)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres at %s: publisher: %w", addr, err)
	}
	sub, err := wsql.NewSubscriber(db, wsql.SubscriberConfig{
		AckDeadline:      &ackDeadline,
		PollInterval:     tc.pollInterval(),
		ResendInterval:   tc.pollInterval(),
		SchemaAdapter:    schema,
		OffsetsAdapter:   wsql.PostgreSQLQueueOffsetsAdapter{DeleteOnAck: tc.Postgres.DeleteOnAck},
		InitializeSchema: true,
	}, o.logger)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres at %s: subscriber: %w", addr, err)
	}
	delayed := newPGDelaySubscriber(sub, schema, o.logger)
	subs := make([]message.Subscriber, n)
	for i := range subs {
		subs[i] = delayed
	}
	fan, err := NewFanIn(subs...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &built{
		pub:     pub,
		sub:     fan,
		caps:    o.tc.Capabilities(),
		closers: []func() error{func() error { pool.Close(); return nil }},
	}, nil
}

// skipLockedQueueSchema is watermill-sql's PostgreSQL queue schema with
// SKIP LOCKED added to the row lock, so N subscriptions of one topic lock N
// different rows and run concurrently instead of queueing on one row.
type skipLockedQueueSchema struct {
	wsql.PostgreSQLQueueSchema
}

// schemaLockID keys the advisory lock that serialises schema creation:
// concurrent CREATE TABLE IF NOT EXISTS of one table (a publisher and
// subscribers starting together) otherwise fails with a unique violation
// in pg_class.
const schemaLockID = 0x1e7ee

// SchemaInitializingQueries runs the queue schema's queries behind a
// transaction-scoped advisory lock.
func (s skipLockedQueueSchema) SchemaInitializingQueries(params wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	qs, err := s.PostgreSQLQueueSchema.SchemaInitializingQueries(params)
	if err != nil {
		return nil, err
	}
	// One lock for all tables: PostgreSQL picks the names of implicit
	// objects (the SERIAL sequence, truncated to 63 bytes) without locking,
	// so creating two long-named tables at once can collide too.
	lock := wsql.Query{Query: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", schemaLockID)}
	qs = append([]wsql.Query{lock}, qs...)
	// The poll looks for the oldest unacked row; without an index on them
	// it scans past every acked row, which watermill-sql keeps by default.
	table := s.MessagesTable(params.Topic)
	qs = append(qs, wsql.Query{Query: fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s ("offset") WHERE acked = false`,
		pgUnackedIndex(table), table)})
	return qs, nil
}

// pgUnackedIndex names the partial index of a topic table's unacked rows:
// a hash of the table name, since table names may use all 63 bytes
// PostgreSQL keeps.
func pgUnackedIndex(table string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(table))
	return fmt.Sprintf(`"levee_unacked_%016x"`, h.Sum64())
}

// RequiresTransaction makes watermill-sql run the schema queries in a
// transaction, so the advisory lock is held until the table is committed.
func (s skipLockedQueueSchema) RequiresTransaction() bool { return true }

func (s skipLockedQueueSchema) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	q, err := s.PostgreSQLQueueSchema.SelectQuery(params)
	if err != nil {
		return q, err
	}
	q.Query += " SKIP LOCKED"
	return q, nil
}
