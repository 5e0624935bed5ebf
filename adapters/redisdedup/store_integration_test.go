//go:build integration

package redisdedup_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dedup/deduptest"
	"github.com/levee-dev/levee/internal/brokertest"
)

func TestConformance(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	client := redis.NewClient(&redis.Options{Addr: brokertest.RedisAddr()})
	t.Cleanup(func() { _ = client.Close() })
	prefix := brokertest.Name("levee:dedup:test") + ":"
	deduptest.Run(t, "k", func(t *testing.T) dedup.Store {
		s, err := redisdedup.New(client, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
