package pgstore

import (
	"context"
	"fmt"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// FromConfig builds the store a `store` section describes: a dlqops.MemStore
// for kind memory, a PostgreSQL Store (migrated) for kind postgres; kind
// redis is an error (adapters/dlqstore.FromConfig builds every kind). The
// section's timeout becomes WithTimeout (opts may override it). The
// returned close function releases it. Errors wrap ErrInvalidConfig or, for
// an unreachable server, ErrUnreachable and dlqops.ErrStore.
func FromConfig(ctx context.Context, c dlqops.StoreConfig, opts ...Option) (dlqops.Store, func() error, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: store: %w", ErrInvalidConfig, err)
	}
	switch c.StoreKind() {
	case dlqops.StoreKindRedis:
		return nil, nil, fmt.Errorf("%w: store kind redis: build it with adapters/dlqstore.FromConfig", ErrInvalidConfig)
	case dlqops.StoreKindMemory:
		return dlqops.NewMemStore(), func() error { return nil }, nil
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
