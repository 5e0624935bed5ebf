package pgstore

import (
	"context"
	"fmt"

	"github.com/levee-dev/levee/dlq"
)

// FromConfig builds the store a `store` section describes: a dlq.MemStore
// for kind memory, a PostgreSQL Store (migrated) for kind postgres; kind
// redis is an error (adapters/dlqstore.FromConfig builds every kind). The
// section's timeout becomes WithTimeout (opts may override it). The
// returned close function releases it. Errors wrap ErrInvalidConfig or, for
// an unreachable server, ErrUnreachable and dlq.ErrStore.
func FromConfig(ctx context.Context, c dlq.StoreConfig, opts ...Option) (dlq.Store, func() error, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: store: %w", ErrInvalidConfig, err)
	}
	switch c.StoreKind() {
	case dlq.StoreKindRedis:
		return nil, nil, fmt.Errorf("%w: store kind redis: build it with adapters/dlqstore.FromConfig", ErrInvalidConfig)
	case dlq.StoreKindMemory:
		return dlq.NewMemStore(), func() error { return nil }, nil
	}
	opts = append([]Option{WithTimeout(c.StoreTimeout())}, opts...)
	if c.Schema != "" {
		opts = append([]Option{WithSchema(c.Schema)}, opts...)
	}
	s, err := Open(ctx, c.URL, opts...)
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}
