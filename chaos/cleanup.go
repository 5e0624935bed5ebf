package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/redis/go-redis/v9"
)

// dropRunData deletes what a run wrote to a shared store under its own
// prefix (levee_chaos_<run id>: the dead letters, their indexes and the
// attempt counts; on PostgreSQL the schema of that name), so that runs
// leave nothing behind on the server they share with the user. (A private
// store server dies with the run.) The prefix is unique to the run:
// nothing else is ever under it.
func dropRunData(ctx context.Context, sc dlqops.StoreConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case sc.Kind == dlqops.StoreKindPostgres && sc.Schema != "":
		conn, err := pgx.Connect(ctx, sc.URL)
		if err != nil {
			return fmt.Errorf("levee/chaos: drop run data: %w", err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{sc.Schema}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("levee/chaos: drop run data: %w", err)
		}
		return nil
	case sc.Kind != dlqops.StoreKindRedis || sc.Prefix == "":
		return nil
	}
	opts, err := redis.ParseURL(sc.URL)
	if err != nil {
		return fmt.Errorf("levee/chaos: drop run data: %w", err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	iter := c.Scan(ctx, 0, sc.Prefix+":*", 1000).Iterator()
	batch := make([]string, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return fmt.Errorf("levee/chaos: drop run data: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("levee/chaos: drop run data: %w", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("levee/chaos: drop run data: %w", err)
	}
	return nil
}
