//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	pool := s.Pool()
	for _, q := range []string{
		`CREATE TABLE ` + schema + `.prune_log (n int)`,
		`CREATE FUNCTION ` + schema + `.log_prune() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO ` + schema + `.prune_log SELECT count(*) FROM gone; RETURN NULL; END $$`,
		`CREATE TRIGGER log_prune AFTER DELETE ON ` + schema + `.dead_letters
			REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION ` + schema + `.log_prune()`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const old, young = 2500, 30
	add := func(prefix string, n int, from time.Duration) {
		t.Helper()
		letters := make([]dlqops.Record, n)
		for i := range letters {
			letters[i] = dlqtest.Letter(fmt.Sprintf("%s-%05d", prefix, i), "g", "orders", "h", from+time.Duration(i)*time.Second)
		}
		for i := 0; i < n; i += 500 {
			if _, err := s.Add(ctx, letters[i:min(i+500, n)]...); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("old", old, 0)
	add("young", young, 100*time.Hour)
	now := dlqtest.Base.Add(101 * time.Hour)
	statements := func() []int {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT n FROM `+schema+`.prune_log`)
		if err != nil {
			t.Fatal(err)
		}
		var ns []int
		for rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			ns = append(ns, n)
		}
		_, _ = pool.Exec(ctx, `TRUNCATE `+schema+`.prune_log`)
		return ns
	}

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
