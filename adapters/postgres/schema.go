package postgres

import (
	"fmt"
	"hash/fnv"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

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
		unackedIndex(table), table)})
	return qs, nil
}

// unackedIndex names the partial index of a topic table's unacked rows:
// a hash of the table name, since table names may use all 63 bytes
// PostgreSQL keeps.
func unackedIndex(table string) string {
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
