package postgres

import (
	"errors"
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

// MaxTopicLen is the longest topic the transport takes: its table is
// "watermill_" and the topic, and PostgreSQL keeps 63 bytes of a name. It
// cuts a longer one silently, so two topics that differ past the cut (a
// topic and its ".dlq") would share one table: the handler of one would
// consume the other's messages.
const MaxTopicLen = maxIdentifier - len(tablePrefix)

const (
	maxIdentifier = 63 // PostgreSQL's NAMEDATALEN - 1
	tablePrefix   = "watermill_"
)

// ErrTopicTooLong is returned by a Publish or a Subscribe of a topic
// longer than MaxTopicLen bytes.
var ErrTopicTooLong = errors.New("levee/postgres: topic too long")

// CheckTopic refuses a topic whose table name PostgreSQL would cut
// (ErrTopicTooLong): longer than MaxTopicLen.
func CheckTopic(topic string) error {
	if len(topic) > MaxTopicLen {
		return fmt.Errorf("%w: %q is %d bytes; its table %s%s would be cut to PostgreSQL's %d bytes, and topics that differ past the cut (a topic and its .dlq) would share one table: use at most %d bytes",
			ErrTopicTooLong, topic, len(topic), tablePrefix, topic, maxIdentifier, MaxTopicLen)
	}
	return nil
}

// SchemaInitializingQueries runs the queue schema's queries behind a
// transaction-scoped advisory lock. The publisher and the subscriber run
// them for every topic before they use it, so a topic too long for its
// table name fails here (ErrTopicTooLong).
func (s skipLockedQueueSchema) SchemaInitializingQueries(params wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	if err := CheckTopic(params.Topic); err != nil {
		return nil, err
	}
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
