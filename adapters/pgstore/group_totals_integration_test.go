//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestGroupTotalsMatchTheLetters: the totals of migration 0006 (letters
// and newest failure per group, the groups pages' order) equal an
// aggregate of the letters after inserts, status changes, a prune and a
// delete of groups' newest letters (which the delete trigger reads again
// from the letters), and after the migration counted the letters stored
// before it.
func TestGroupTotalsMatchTheLetters(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	// a schema at version 5 with letters, then migrated to 6: the
	// migration counts them
	old, err := pgstore.Open(ctx, pgURL(), pgstore.WithSchema(schema), pgstore.WithoutMigrate())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Close() })
	if err := migrateTo(ctx, old, 5); err != nil {
		t.Fatal(err)
	}
	var letters []dlqops.Record
	for i := range 120 {
		letters = append(letters, dlqtest.Letter(fmt.Sprintf("l-%03d", i), fmt.Sprintf("g%d", i%7), fmt.Sprintf("t%d", i%3),
			fmt.Sprintf("h%d", i%5), time.Duration(i)*time.Second))
	}
	if _, err := old.Add(ctx, letters[:60]...); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, schema)
	checkTotals(t, s, "after the migration")
	if _, err := s.Add(ctx, letters[60:]...); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after inserts")
	if _, err := s.SetStatus(ctx, dlqops.Filter{Topic: "t2", Limit: 30}, dlqops.StatusArchived); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, dlqops.Retention{MaxCount: 100}, dlqtest.Base); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after a status change and a prune")
	// the newest letters of g0..g6 (ids l-113..l-119), and every letter of
	// handler h4: their groups' newest letters are gone
	if _, err := s.Pool().Exec(ctx, `DELETE FROM `+schema+`.dead_letters WHERE id >= 'l-113' OR handler = 'h4'`); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after deleting groups' newest letters")
}

// migrateTo applies the embedded migrations up to version v, as an older
// release would have.
func migrateTo(ctx context.Context, s *pgstore.Store, v int) error {
	ms, err := pgstore.Migrations()
	if err != nil {
		return err
	}
	if _, err := s.Pool().Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s.Schema()+`;
		CREATE TABLE IF NOT EXISTS `+s.Schema()+`.levee_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	for _, m := range ms {
		if m.Version > v {
			break
		}
		if _, err := s.Pool().Exec(ctx, strings.ReplaceAll(m.SQL, "{{schema}}", s.Schema())); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if _, err := s.Pool().Exec(ctx, `INSERT INTO `+s.Schema()+`.levee_schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return err
		}
	}
	return nil
}

func checkTotals(t *testing.T, s *pgstore.Store, when string) {
	t.Helper()
	q := `WITH want AS (
		SELECT d.dim, d.key, count(*) AS n, max(r.failed_at) AS last FROM ` + s.Schema() + `.dead_letters r
		CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key) GROUP BY 1, 2)
		SELECT count(*) FROM want FULL JOIN ` + s.Schema() + `.group_totals g ON g.dim = want.dim AND g.key = want.key
		WHERE g.n IS DISTINCT FROM want.n OR g.last IS DISTINCT FROM want.last`
	var bad int
	if err := s.Pool().QueryRow(context.Background(), q).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%s: %d groups' totals differ from the letters", when, bad)
	}
}
