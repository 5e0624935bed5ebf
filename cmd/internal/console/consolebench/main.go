package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
)

func main() {
	kind := flag.String("store", "postgres", "postgres or redis")
	url := flag.String("url", "postgres://postgres@127.0.0.1:5432/test", "store URL")
	n := flag.Int("n", 100000, "letters to seed")
	seed := flag.Bool("seed", true, "seed the store first")
	ns := flag.String("namespace", "levee_console_bench", "PostgreSQL schema or Redis prefix")
	runs := flag.Int("runs", 5, "timed requests per page")
	flag.Parse()
	if err := run(*kind, *url, *ns, *n, *seed, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "consolebench:", err)
		os.Exit(1)
	}
}

func run(kind, url, ns string, n int, seed bool, runs int) error {
	ctx := context.Background()
	var (
		store  dlqops.Store
		seeder func(context.Context, []dlqops.Record) error
		closer func() error
	)
	switch kind {
	case "postgres":
		s, err := pgstore.Open(ctx, url, pgstore.WithSchema(ns), pgstore.WithTimeout(time.Minute))
		if err != nil {
			return err
		}
		store, closer, seeder = s, s.Close, func(ctx context.Context, l []dlqops.Record) error { return copyLetters(ctx, s, l) }
	case "redis":
		s, err := redisstore.Open(ctx, url, redisstore.WithPrefix(ns), redisstore.WithTimeout(time.Minute))
		if err != nil {
			return err
		}
		store, closer, seeder = s, s.Close, func(ctx context.Context, l []dlqops.Record) error { _, err := s.Add(ctx, l...); return err }
	default:
		return fmt.Errorf("unknown store %q", kind)
	}
	defer closer()
	now := time.Now().UTC().Truncate(time.Second)
	if seed {
		start := time.Now()
		if err := seedStore(ctx, seeder, n, now); err != nil {
			return err
		}
		if s, ok := store.(*pgstore.Store); ok {
			if _, err := s.Pool().Exec(ctx, "ANALYZE "+s.Schema()+".dead_letters"); err != nil {
				return err
			}
		}
		fmt.Printf("seeded %d letters in %s\n", n, time.Since(start).Round(time.Millisecond))
	}
	return timePages(ctx, store, now, runs)
}
