package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/redis/go-redis/v9"
)

// dropRunData deletes what a run wrote to a shared Redis store under its
// own prefix (levee_chaos_<run id>: the dead letters, their indexes and
// the attempt counts), so that runs leave no keys behind on the server they
// share with the user. A private store server dies with the run, and a
// PostgreSQL store's schema is the run's own; those need nothing. The
// prefix is unique to the run: nothing else is ever under it.
func dropRunData(ctx context.Context, sc dlqops.StoreConfig) error {
	if sc.Kind != dlqops.StoreKindRedis || sc.Prefix == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
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
