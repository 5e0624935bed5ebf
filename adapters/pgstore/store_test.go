package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

func TestMigrationsEmbedded(t *testing.T) {
	migs, err := pgstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 || migs[0].Version != 1 {
		t.Fatalf("migrations: %+v", migs)
	}
	for _, m := range migs {
		if !strings.Contains(m.SQL, "{{schema}}") {
			t.Errorf("%s does not use the {{schema}} placeholder", m.Name)
		}
	}
	for _, idx := range []string{"fingerprint", "original_topic", "handler", "failed_at"} {
		if !strings.Contains(migs[0].SQL, "("+idx) {
			t.Errorf("no index leading with %s", idx)
		}
	}
}

func TestOptionsValidated(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		url  string
		opts []pgstore.Option
	}{
		{"bad schema", "postgres://x@127.0.0.1/db", []pgstore.Option{pgstore.WithSchema("a;b")}},
		{"long schema", "postgres://x@127.0.0.1/db", []pgstore.Option{pgstore.WithSchema(strings.Repeat("a", 64))}},
		{"zero batch", "postgres://x@127.0.0.1/db", []pgstore.Option{pgstore.WithBatchRows(0)}},
		{"huge batch", "postgres://x@127.0.0.1/db", []pgstore.Option{pgstore.WithBatchRows(100000)}},
		{"zero dial", "postgres://x@127.0.0.1/db", []pgstore.Option{pgstore.WithDialTimeout(0)}},
		{"bad url", "postgres://%zz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pgstore.Open(ctx, tt.url, tt.opts...); !errors.Is(err, pgstore.ErrInvalidConfig) {
				t.Errorf("got %v want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := pgstore.New(ctx, nil); !errors.Is(err, pgstore.ErrInvalidConfig) {
		t.Errorf("nil pool: got %v", err)
	}
}

func TestFromConfigRedisPointsToDLQStore(t *testing.T) {
	_, _, err := pgstore.FromConfig(context.Background(), dlqops.StoreConfig{Kind: dlqops.StoreKindRedis, URL: "redis://127.0.0.1:6379/0"})
	if !errors.Is(err, pgstore.ErrInvalidConfig) || !strings.Contains(err.Error(), "adapters/dlqstore") {
		t.Errorf("got %v want ErrInvalidConfig naming adapters/dlqstore", err)
	}
}
