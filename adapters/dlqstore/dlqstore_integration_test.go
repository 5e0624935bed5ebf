//go:build integration

package dlqstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/internal/brokertest"
)

// Each kind builds its store, which records and reads a letter.
func TestFromConfigEveryKind(t *testing.T) {
	ctx := context.Background()
	sfx := brokertest.Name("levee_test")
	for _, tt := range []struct {
		c    dlqops.StoreConfig
		want string
	}{
		{dlqops.StoreConfig{}, "*dlqops.MemStore"},
		{dlqops.StoreConfig{Kind: dlqops.StoreKindRedis, URL: brokertest.RedisURL(), Prefix: sfx}, "*redisstore.Store"},
		{dlqops.StoreConfig{Kind: dlqops.StoreKindPostgres, URL: brokertest.PostgresURL(), Schema: sfx}, "*pgstore.Store"},
	} {
		t.Run(tt.c.StoreKind(), func(t *testing.T) {
			s, closeFn, err := dlqstore.FromConfig(ctx, tt.c)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			switch st := s.(type) {
			case *redisstore.Store:
				if st.Prefix() != tt.c.Prefix {
					t.Errorf("prefix %q", st.Prefix())
				}
				defer st.Prune(ctx, dlqops.Retention{MaxAge: time.Nanosecond}, time.Now())
			case *pgstore.Store:
				defer st.Pool().Exec(ctx, `DROP SCHEMA IF EXISTS `+tt.c.Schema+` CASCADE`)
			}
			if got := fmt.Sprintf("%T", s); got != tt.want {
				t.Errorf("got %s want %s", got, tt.want)
			}
			if _, err := s.Add(ctx, dlqtest.Letter("x", "g", "t", "h", 0)); err != nil {
				t.Fatal(err)
			}
			if dl, err := s.Get(ctx, "x"); err != nil || dl.Fingerprint != "g" {
				t.Errorf("get: %+v %v", dl, err)
			}
			a, ok := dlqstore.Attempts(s)
			if ok != (tt.c.StoreKind() != dlqops.StoreKindMemory) {
				t.Fatalf("Attempts: %v", ok)
			}
			if ok {
				uuid := "m-" + sfx
				if tt.c.StoreKind() == dlqops.StoreKindRedis {
					defer s.(*redisstore.Store).Client().Del(ctx, tt.c.Prefix+":attempts:1:h:"+uuid)
				}
				for i := 1; i <= 2; i++ {
					if n, _, err := a.Fail(ctx, "h", uuid, time.Now(), time.Hour); err != nil || n != i {
						t.Errorf("attempt %d: got %d, %v", i, n, err)
					}
				}
			}
		})
	}
}

func TestFromConfigUnreachable(t *testing.T) {
	for _, c := range []dlqops.StoreConfig{
		{Kind: dlqops.StoreKindRedis, URL: "redis://127.0.0.1:1/0"},
		{Kind: dlqops.StoreKindPostgres, URL: "postgres://postgres@127.0.0.1:1/test?connect_timeout=2"},
	} {
		_, _, err := dlqstore.FromConfig(context.Background(), c)
		if !errors.Is(err, dlqops.ErrStore) || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%s: got %v want dlqops.ErrStore naming the address", c.Kind, err)
		}
	}
}
