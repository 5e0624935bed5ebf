package dlqstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/dlq/dlqops"
)

func TestFromConfigRejectsBadSections(t *testing.T) {
	for _, c := range []dlqops.StoreConfig{
		{Kind: "mongo"},
		{Kind: dlqops.StoreKindPostgres},
		{Kind: dlqops.StoreKindRedis, URL: "http://h"},
		{Kind: dlqops.StoreKindRedis, URL: "redis://h:6379", Prefix: "a b"},
		{URL: "redis://h:6379"},
	} {
		s, closeFn, err := dlqstore.FromConfig(context.Background(), c)
		if !errors.Is(err, dlqops.ErrInvalidConfig) || s != nil || closeFn != nil {
			t.Errorf("%+v: got %v, %v want ErrInvalidConfig", c, s, err)
		}
	}
}
