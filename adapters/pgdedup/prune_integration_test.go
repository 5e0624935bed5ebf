//go:build integration

package pgdedup_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestPruneKeepsTheTableBounded: under key churn (a new identity on most
// messages) the inbox table keeps only the rows whose claim or window
// has not ended (docs/DEDUP.md: "a pruner deletes ended rows every
// minute"): Prune deletes the rows that ended over a minute ago and
// keeps the live ones and those that just ended (a takeover still
// recognises them), and the pruner New starts runs it by itself.
func TestPruneKeepsTheTableBounded(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	table := brokertest.Fresh(t, "levee_dedup_prune", func(name string) error {
		_, err := p.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		return err
	})
	s, err := pgdedup.New(ctx, p, pgdedup.WithTable(table), pgdedup.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	insert := func(key, until string) {
		t.Helper()
		if _, err := p.Exec(ctx, "INSERT INTO "+s.Table()+" (key, token, done, until) VALUES ($1, 1, true, now() + $2::interval)", key, until); err != nil {
			t.Fatal(err)
		}
	}
	for i, until := range map[string]string{"ended": "-2 minutes", "just-ended": "-10 seconds", "live": "1 hour"} {
		insert(i, until)
	}
	n, err := s.Prune(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 row (the one that ended 2 minutes ago)", n, err)
	}
	var left []string
	rows, _ := p.Query(ctx, "SELECT key FROM "+s.Table()+" ORDER BY key")
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		left = append(left, k)
	}
	if err := rows.Err(); err != nil || len(left) != 2 || left[0] != "just-ended" || left[1] != "live" {
		t.Fatalf("rows left %v (%v), want [just-ended live]", left, err)
	}

	pruned, err := pgdedup.New(ctx, p, pgdedup.WithTable(table), pgdedup.WithoutMigrate(), pgdedup.WithPruneEvery(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer pruned.Close()
	insert("ended-again", "-5 minutes")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := p.QueryRow(ctx, "SELECT count(*) FROM "+s.Table()+" WHERE key = 'ended-again'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pruner left a row that ended 5 minutes ago")
		}
	}
}
