package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/redact"
)

// This file holds `levee dlq replay --dedup-store`: the replay asks the
// consumers' dedup store whether a letter's message already succeeded and
// holds such letters back (reported, not published to be dropped).

// dedupDialTimeout bounds opening the dedup store.
const dedupDialTimeout = 5 * time.Second

// doneCheck is what the replayer asks: is the identity done for the
// handler (under the handler's namespace, as config sets it)?
type doneCheck = func(ctx context.Context, handler, identity string) (bool, error)

// underHandler turns a store's IsDone into a doneCheck, each call bounded
// by timeout: a stalled dedup store (a held lock, a paused server) fails
// the check of one letter, which the run holds back, instead of hanging
// the replay.
func underHandler(isDone func(context.Context, string) (bool, error), timeout time.Duration) doneCheck {
	return func(ctx context.Context, handler, identity string) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return isDone(ctx, dedup.StoreKey(handler, identity))
	}
}

// openDoneCheck opens the dedup store at url (redis://... with name as
// the key prefix, or postgres://... with name as the table; "" means the
// store's default) and returns its check, each call bounded by timeout
// (the `store: timeout`), and a closer.
func openDoneCheck(ctx context.Context, url, name string, timeout time.Duration) (doneCheck, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, dedupDialTimeout)
	defer cancel()
	switch {
	case strings.HasPrefix(url, "redis://"), strings.HasPrefix(url, "rediss://"):
		s, err := redisdedup.Open(ctx, url, name)
		if err != nil {
			return nil, nil, redact.Error(fmt.Errorf("--dedup-store %s: %w", redact.URL(url), err), url)
		}
		return underHandler(s.IsDone, timeout), func() { _ = s.Close() }, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		var opts []pgdedup.Option
		if name != "" {
			opts = append(opts, pgdedup.WithTable(name))
		}
		opts = append(opts, pgdedup.WithoutMigrate(), pgdedup.WithPruneEvery(0))
		s, err := pgdedup.Open(ctx, url, opts...)
		if err != nil {
			return nil, nil, redact.Error(fmt.Errorf("--dedup-store %s: %w", redact.URL(url), err), url)
		}
		return underHandler(s.IsDone, timeout), func() { _ = s.Close() }, nil
	}
	return nil, nil, usagef("--dedup-store: %q is not a redis:// or postgres:// URL", redact.URL(url))
}
