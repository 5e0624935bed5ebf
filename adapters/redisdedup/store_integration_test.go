//go:build integration

package redisdedup_test

import (
	"strings"
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
	// Hostile identities too: a NUL byte and invalid UTF-8, Lua pattern
	// characters, an identity at dedup.MaxKeyLen.
	for name, keyPrefix := range map[string]string{"plain": "k", "nul and invalid utf-8": "nul\x00bad\xff\xc3(",
		"lua pattern": "%d+:(.-)$", "max len": strings.Repeat("x", dedup.MaxKeyLen-8)} {
		t.Run(name, func(t *testing.T) {
			deduptest.Run(t, keyPrefix, func(t *testing.T) dedup.Store {
				s, err := redisdedup.New(client, prefix)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}
