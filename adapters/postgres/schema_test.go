package postgres

import (
	"regexp"
	"strings"
	"testing"
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
