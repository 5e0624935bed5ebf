package postgres

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// The partial index of a topic table has a name PostgreSQL keeps whole
// (under 63 bytes) whatever the table name, and one per table.
func TestUnackedIndexName(t *testing.T) {
	long := `"watermill_` + strings.Repeat("t", 52) + `"`
	a, b := unackedIndex(`"watermill_orders"`), unackedIndex(long)
	re := regexp.MustCompile(`^"levee_unacked_[0-9a-f]{16}"$`)
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Fatalf("got %s and %s", a, b)
	}
	if a != unackedIndex(`"watermill_orders"`) {
		t.Fatal("not stable")
	}
}

// The requeue statement stamps levee_redeliver_at, and the poll condition
// reads the same key.
func TestRedeliverAtKey(t *testing.T) {
	if !strings.Contains(requeueQuery(`"t"`), "'levee_redeliver_at'") || !strings.Contains(redeliverAtWhere, "'levee_redeliver_at'") {
		t.Fatalf("requeue %q / where %q do not use levee_redeliver_at", requeueQuery(`"t"`), redeliverAtWhere)
	}
}

// A topic whose table name PostgreSQL would cut (over 63 bytes with its
// "watermill_" prefix) is refused before any query: cut, a topic and its
// ".dlq" of 60 bytes named one table, and each handler consumed the
// other's messages. One of MaxTopicLen bytes is taken.
func TestTopicTooLongIsRefused(t *testing.T) {
	if MaxTopicLen != 53 {
		t.Fatalf("MaxTopicLen %d, want 63 - len(watermill_)", MaxTopicLen)
	}
	var s skipLockedQueueSchema
	long := strings.Repeat("o", MaxTopicLen+1)
	if _, err := s.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: long}); !errors.Is(err, ErrTopicTooLong) ||
		!strings.Contains(err.Error(), "at most 53 bytes") {
		t.Fatalf("a %d-byte topic: %v, want ErrTopicTooLong naming the limit", len(long), err)
	}
	ok := strings.Repeat("o", MaxTopicLen)
	if _, err := s.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: ok}); err != nil {
		t.Fatalf("a %d-byte topic: %v", len(ok), err)
	}
}
