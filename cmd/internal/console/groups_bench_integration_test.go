//go:build integration

package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkGroupsPage times the groups page (first page, and page 100)
// through the console's handler with 20,000 groups in each store (one
// letter a group, ten in every hundredth; 20 topics, 30 handlers):
//
//	cd cmd && go test -tags integration -run '^$' -bench BenchmarkGroupsPage -benchtime 20x ./internal/console/
//
// B/op and allocs/op are this process's: the console and the store's
// client.
func BenchmarkGroupsPage(b *testing.B) {
	ctx := context.Background()
	var letters []dlqops.Record
	for i := range benchGroups {
		n := 1
		if i%benchBigEvery == 0 {
			n = benchBigLetters
		}
		for j := range n {
			dl := dlqtest.Letter(fmt.Sprintf("l-%05d-%d", i, j), fmt.Sprintf("%016x", i), fmt.Sprintf("topic-%02d", i%benchTopics),
				fmt.Sprintf("handler-%02d", i%benchHandlers), time.Duration(i)*time.Second+time.Duration(j)*time.Millisecond)
			letters = append(letters, dl)
		}
	}
	if len(letters) != benchLetters() {
		b.Fatalf("seeded %d letters, docs/CONSOLE.md says %d", len(letters), benchLetters())
	}
	stores := []struct {
		name string
		open func(b *testing.B) dlqops.Browser
	}{
		{"memory", func(*testing.B) dlqops.Browser { return dlqops.NewMemStore() }},
		{"postgres", func(b *testing.B) dlqops.Browser {
			schema := brokertest.Fresh(b, "levee_bench", func(name string) error {
				s, err := pgstore.Open(ctx, brokertest.PostgresURL(), pgstore.WithSchema(name), pgstore.WithoutMigrate())
				if err != nil {
					return err
				}
				defer s.Close()
				_, err = s.Pool().Exec(ctx, `DROP SCHEMA IF EXISTS `+name+` CASCADE`)
				return err
			})
			s, err := pgstore.Open(ctx, brokertest.PostgresURL(), pgstore.WithSchema(schema), pgstore.WithTimeout(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(b *testing.B) dlqops.Browser {
			prefix := brokertest.Fresh(b, "levee_bench", func(p string) error { return unlinkPrefix(ctx, p) })
			s, err := redisstore.Open(ctx, brokertest.RedisURL(), redisstore.WithPrefix(prefix), redisstore.WithTimeout(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			for from := 0; from < len(letters); from += 1000 {
				if _, err := s.Add(ctx, letters[from:min(from+1000, len(letters))]...); err != nil {
					b.Fatal(err)
				}
			}
			srv, err := New(Config{Users: []User{{Name: "alice", Password: "alice-secret", Role: RoleViewer}}}, Deps{Store: s})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			for _, page := range []string{"/", "/?page=100"} {
				b.Run("page="+page, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						req := httptest.NewRequest("GET", page, nil)
						req.SetBasicAuth("alice", "alice-secret")
						rec := httptest.NewRecorder()
						srv.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Fatalf("status %d: %s", rec.Code, rec.Body)
						}
					}
				})
			}
		})
	}
}

// unlinkPrefix deletes every key under prefix.
func unlinkPrefix(ctx context.Context, prefix string) error {
	opt, err := redis.ParseURL(brokertest.RedisURL())
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	it := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for it.Next(ctx) {
		if keys = append(keys, it.Val()); len(keys) == 1000 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return c.Unlink(ctx, keys...).Err()
	}
	return nil
}
