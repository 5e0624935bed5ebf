//go:build integration

package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

func TestAttemptsConformance(t *testing.T) {
	dlqtest.RunAttempts(t, func(t *testing.T) dlq.AttemptStore { return openStore(t, newPrefix(t)).Attempts() })
}

// The record carries the TTL (no key is left behind) under the
// documented key.
func TestAttemptsKeyAndTTL(t *testing.T) {
	ctx := context.Background()
	p := newPrefix(t)
	s := openStore(t, p)
	if _, _, err := s.Attempts().Fail(ctx, "pay:ments", "m-1", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	key := p + ":attempts:9:pay:ments:m-1"
	ttl, err := s.Client().PTTL(ctx, key).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("%s: ttl %s, %v want about 1h", key, ttl, err)
	}
}
