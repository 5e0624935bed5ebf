package dlqstore

import (
	"context"
	"fmt"

	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// FromConfig builds the store a `store:` section describes: a
// dlqops.MemStore for kind memory (or no kind), a pgstore.Store (migrated)
// for kind postgres, a redisstore.Store for kind redis. It checks the
// section first (errors wrap dlqops.ErrInvalidConfig), then connects within
// the backend's dial timeout (5 s): an unreachable server gives an error
// wrapping dlqops.ErrStore that names the address. The section's timeout
// (default 5 s) bounds every call of the store it builds. The returned close
// function releases the store's connections; it is never nil when err is
// nil.
func FromConfig(ctx context.Context, c dlqops.StoreConfig) (dlqops.Store, func() error, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("levee/dlqstore: store: %w", err)
	}
	switch c.StoreKind() {
	case dlqops.StoreKindPostgres:
		s, closeFn, err := pgstore.FromConfig(ctx, c)
		if err != nil {
			return nil, nil, fmt.Errorf("levee/dlqstore: postgres store: %w", err)
		}
		return s, closeFn, nil
	case dlqops.StoreKindRedis:
		opts := []redisstore.Option{redisstore.WithTimeout(c.StoreTimeout())}
		if c.Prefix != "" {
			opts = append(opts, redisstore.WithPrefix(c.Prefix))
		}
		s, err := redisstore.Open(ctx, c.URL, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("levee/dlqstore: redis store: %w", err)
		}
		return s, s.Close, nil
	}
	return dlqops.NewMemStore(), func() error { return nil }, nil
}

// CheckSchema returns the error FromConfig's PostgreSQL store gives for
// the section's schema when it is not a plain identifier (nil for the
// other kinds and for the default schema), for levee config check.
func CheckSchema(c dlqops.StoreConfig) error {
	if c.StoreKind() != dlqops.StoreKindPostgres || c.Schema == "" {
		return nil
	}
	return pgstore.CheckSchema(c.Schema)
}

// CheckURL parses the section's url as FromConfig's store would, without
// connecting (nil for the memory store): a URL the PostgreSQL or Redis
// client refuses is an error of the file, found by levee config check, not
// only by the first connection. The error carries no password.
func CheckURL(c dlqops.StoreConfig) error {
	switch c.StoreKind() {
	case dlqops.StoreKindPostgres:
		return pgstore.CheckURL(c.URL)
	case dlqops.StoreKindRedis:
		return redisstore.CheckURL(c.URL)
	}
	return nil
}

// Attempts returns the shared attempt counter of a store FromConfig built
// (the Redis or PostgreSQL store's, on the same connections), for
// config.Deps.AttemptStore or dlq.WithAttemptStore; false for the
// memory store and any other, whose attempts stay per process.
func Attempts(s dlqops.Store) (dlq.AttemptStore, bool) {
	switch st := s.(type) {
	case *redisstore.Store:
		return st.Attempts(), true
	case *pgstore.Store:
		return st.Attempts(), true
	}
	return nil, false
}
