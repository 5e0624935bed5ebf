package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one embedded schema version.
type Migration struct {
	Version int    // from the file name prefix, e.g. 1 for 0001_init.sql
	Name    string // the file name
	SQL     string // with {{schema}} still in place
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("levee/pgstore: migration %q has no version prefix", name)
		}
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("levee/pgstore: duplicate migration version %d", out[i].Version)
		}
	}
	return out, nil
}

// Migrate creates the schema if needed and applies the embedded
// migrations not applied yet, in one transaction under an advisory lock,
// so concurrent processes starting together migrate once. Applied
// versions are recorded in <schema>.levee_schema_migrations.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := Migrations()
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return storeErr("migrate", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('levee.pgstore.migrate:' || $1))`, s.schema); err != nil {
		return storeErr("migrate lock", err)
	}
	mt := s.schema + ".levee_schema_migrations"
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s.schema); err != nil {
		return storeErr("create schema", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+mt+` (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return storeErr("create migrations table", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM `+mt)
	if err != nil {
		return storeErr("read migrations", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return storeErr("read migrations", err)
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[int(v)] = true
	}
	for _, m := range migs {
		if done[m.Version] {
			continue
		}
		if _, err := tx.Exec(ctx, strings.ReplaceAll(m.SQL, "{{schema}}", s.schema)); err != nil {
			return storeErr("migration "+m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+mt+` (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return storeErr("record migration "+m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return storeErr("migrate commit", err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration version (0 when none).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int32
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s.schema+`.levee_schema_migrations`).Scan(&v)
	if err != nil {
		return 0, storeErr("schema version", err)
	}
	return int(v), nil
}
