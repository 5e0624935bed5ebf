package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
)

func TestOptionsValidated(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		url  string
		opts []redisstore.Option
	}{
		{"empty prefix", "redis://127.0.0.1:6379/0", []redisstore.Option{redisstore.WithPrefix("")}},
		{"bad prefix", "redis://127.0.0.1:6379/0", []redisstore.Option{redisstore.WithPrefix("a b")}},
		{"zero batch", "redis://127.0.0.1:6379/0", []redisstore.Option{redisstore.WithBatchSize(0)}},
		{"huge batch", "redis://127.0.0.1:6379/0", []redisstore.Option{redisstore.WithBatchSize(10001)}},
		{"zero dial", "redis://127.0.0.1:6379/0", []redisstore.Option{redisstore.WithDialTimeout(0)}},
		{"bad scheme", "http://127.0.0.1:6379/0", nil},
		{"bad db", "redis://127.0.0.1:6379/x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// validation happens before any dial: nothing listens on this
			// address's behalf, and the error is not ErrUnreachable
			_, err := redisstore.Open(ctx, tt.url, tt.opts...)
			if !errors.Is(err, redisstore.ErrInvalidConfig) || errors.Is(err, dlqops.ErrStore) {
				t.Errorf("got %v want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := redisstore.New(ctx, nil); !errors.Is(err, redisstore.ErrInvalidConfig) {
		t.Errorf("nil client: got %v", err)
	}
}

// The YAML check (dlqops.StoreConfig.Validate) and WithPrefix apply one rule.
func TestPrefixRuleMatchesStoreConfig(t *testing.T) {
	for _, p := range []string{"levee", "app:dlq1", "{tenant-1}:levee", "a.b_c-d", "x:dlq", "attempts", "a::b", ":a", "a:",
		"a b", "ü", "a*", strings.Repeat("p", 64), strings.Repeat("p", 65), "a\x00"} {
		_, optErr := redisstore.Open(context.Background(), "redis://127.0.0.1:1/0", redisstore.WithPrefix(p),
			redisstore.WithDialTimeout(time.Nanosecond))
		optOK := !errors.Is(optErr, redisstore.ErrInvalidConfig)
		cfgErr := dlqops.StoreConfig{Kind: dlqops.StoreKindRedis, URL: "redis://127.0.0.1:6379/0", Prefix: p}.Validate()
		if optOK != (cfgErr == nil) {
			t.Errorf("prefix %q: option error %v, config error %v", p, optErr, cfgErr)
		}
	}
}
