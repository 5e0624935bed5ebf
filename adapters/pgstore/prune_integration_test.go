//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestPruneDeletesInBoundedStatements: a prune deletes at most 1,000
// letters a statement, oldest first, whatever the backlog. Before, it was
// one DELETE of every letter past the retention: 171,000 of them took
// 12.7 s, past the 5 s store timeout, so the statement was cancelled and
// rolled back on every run and `levee dlq prune` (and a Pruner) never
// pruned that store again. A statement-level trigger records the rows of
// each DELETE.
func TestPruneDeletesInBoundedStatements(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := openStore(t, schema)
	statements := statementLog(t, s, schema, "DELETE", "OLD")
	const old, young = 2500, 30
	add := func(prefix string, n int, from time.Duration) { addLetters(t, s, prefix, n, from) }
	add("old", old, 0)
	add("young", young, 100*time.Hour)
	now := dlqtest.Base.Add(101 * time.Hour)
	n, err := s.Prune(ctx, dlqops.Retention{MaxAge: 50 * time.Hour}, now)
	if err != nil || n != old {
		t.Fatalf("prune by age: deleted %d (%v), want %d", n, err, old)
	}
	for _, k := range statements() {
		if k > 1000 {
			t.Errorf("prune by age: one statement deleted %d letters, want at most 1000", k)
		}
	}

	add("more", 2*old, 90*time.Hour) // older than the young ones
	n, err = s.Prune(ctx, dlqops.Retention{MaxCount: young}, now)
	if err != nil || n != 2*old {
		t.Fatalf("prune by count: deleted %d (%v), want %d", n, err, 2*old)
	}
	for _, k := range statements() {
		if k > 1000 {
			t.Errorf("prune by count: one statement deleted %d letters, want at most 1000", k)
		}
	}
	left, err := s.List(ctx, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != young || left[0].ID != "young-00000" {
		t.Errorf("after the prunes: %d letters, want the %d young ones", len(left), young)
	}
}

// TestSetStatusChangesInBoundedStatements: archiving (or restoring) a
// selection changes at most 1,000 letters a statement, so `levee dlq
// archive` of a large group finishes. Before, it was one UPDATE: 28,500
// letters outlasted the 5 s store timeout and nothing was archived.
func TestSetStatusChangesInBoundedStatements(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := openStore(t, schema)
	statements := statementLog(t, s, schema, "UPDATE", "NEW")
	addLetters(t, s, "a", 2500, 0)
	for _, tt := range []struct {
		name   string
		f      dlqops.Filter
		status dlqops.Status
		want   int
	}{
		{"archive the group", dlqops.Filter{Group: "g"}, dlqops.StatusArchived, 2500},
		{"again: nothing left to change", dlqops.Filter{Group: "g"}, dlqops.StatusArchived, 0},
		{"restore 1,200", dlqops.Filter{Group: "g", Limit: 1200}, dlqops.StatusNew, 1200},
	} {
		n, err := s.SetStatus(ctx, tt.f, tt.status)
		if err != nil || n != tt.want {
			t.Fatalf("%s: changed %d (%v), want %d", tt.name, n, err, tt.want)
		}
		for _, k := range statements() {
			if k > 1000 {
				t.Errorf("%s: one statement changed %d letters, want at most 1000", tt.name, k)
			}
		}
	}
	left, err := s.List(ctx, dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}})
	if err != nil || len(left) != 1200 || left[0].ID != "a-00000" {
		t.Errorf("new after the restore: %d letters (%v), want the 1200 oldest", len(left), err)
	}
}

// addLetters adds n letters of group "g", one a second from Base+from.
func addLetters(t *testing.T, s *pgstore.Store, prefix string, n int, from time.Duration) {
	t.Helper()
	letters := make([]dlqops.Record, n)
	for i := range letters {
		letters[i] = dlqtest.Letter(fmt.Sprintf("%s-%05d", prefix, i), "g", "orders", "h", from+time.Duration(i)*time.Second)
	}
	for i := 0; i < n; i += 500 {
		if _, err := s.Add(context.Background(), letters[i:min(i+500, n)]...); err != nil {
			t.Fatal(err)
		}
	}
}

// statementLog records how many letters each event (DELETE, UPDATE)
// statement on the letters table touched, through a statement-level
// trigger on its transition table (OLD or NEW); the func returns them and
// forgets them.
func statementLog(t *testing.T, s *pgstore.Store, schema, event, table string) func() []int {
	t.Helper()
	ctx, pool := context.Background(), s.Pool()
	for _, q := range []string{
		`CREATE TABLE ` + schema + `.statement_log (n int)`,
		`CREATE FUNCTION ` + schema + `.log_statement() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO ` + schema + `.statement_log SELECT count(*) FROM touched; RETURN NULL; END $$`,
		`CREATE TRIGGER log_statement AFTER ` + event + ` ON ` + schema + `.dead_letters
			REFERENCING ` + table + ` TABLE AS touched FOR EACH STATEMENT EXECUTE FUNCTION ` + schema + `.log_statement()`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() []int {
		t.Helper()
		rows, err := pool.Query(ctx, `DELETE FROM `+schema+`.statement_log RETURNING n`)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
}
