//go:build integration

package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// redisKeyRepository is the Watermill ExpiringKeyRepository a user would
// write on Redis: SET NX PX, one round trip. It marks a message seen
// before the handler runs, so a handler failure loses the message's
// retry (Watermill's Deduplicator has no release).
type redisKeyRepository struct {
	c      *redis.Client
	prefix string
	window time.Duration
}

func (r redisKeyRepository) IsDuplicate(ctx context.Context, key string) (bool, error) {
	ok, err := r.c.SetNX(ctx, r.prefix+key, 1, r.window).Result()
	return !ok, err
}

// pgKeyRepository is the same on PostgreSQL: INSERT ... ON CONFLICT DO
// NOTHING, one round trip.
type pgKeyRepository struct {
	p     *pgxpool.Pool
	table string
}

func (r pgKeyRepository) IsDuplicate(ctx context.Context, key string) (bool, error) {
	tag, err := r.p.Exec(ctx, "INSERT INTO "+r.table+" (key) VALUES ($1) ON CONFLICT DO NOTHING", key)
	return err == nil && tag.RowsAffected() == 0, err
}

// BenchmarkDedupRedis: one new message per op through Levee's Redis store
// (claim script, handler, SET done: two round trips) and through
// Watermill's Deduplicator on a SET NX repository (one round trip).
func BenchmarkDedupRedis(b *testing.B) {
	brokertest.SkipIfDown(b, brokertest.RedisAddr())
	c := redis.NewClient(&redis.Options{Addr: brokertest.RedisAddr()})
	defer c.Close()
	prefix := brokertest.Name("levee_bench_dedup") + ":"
	b.Cleanup(func() { deleteRedisPrefix(context.Background(), c, prefix[:len(prefix)-1]) })
	s, err := redisdedup.New(c, prefix+"l:")
	if err != nil {
		b.Fatal(err)
	}
	d, err := dedup.New(dedup.WithStore(s), dedup.WithWindow(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	wm := &wmw.Deduplicator{KeyFactory: func(m *message.Message) (string, error) { return m.UUID, nil },
		Repository: redisKeyRepository{c: c, prefix: prefix + "w:", window: time.Minute}, Timeout: time.Minute}
	runDedupPair(b, d.Middleware(middlewareNoop), wm.Middleware(middlewareNoop))
}

// BenchmarkDedupPostgres: the same on PostgreSQL: Levee's inbox (claim
// statement, handler, done statement) and Watermill's Deduplicator on an
// INSERT ... ON CONFLICT DO NOTHING repository.
func BenchmarkDedupPostgres(b *testing.B) {
	brokertest.SkipIfDown(b, brokertest.PostgresURL())
	ctx := context.Background()
	p, err := pgxpool.New(ctx, brokertest.PostgresURL())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	name := brokertest.Name("levee_bench_dedup")
	wmTable := pgx.Identifier{name + "_wm"}.Sanitize()
	if _, err := p.Exec(ctx, "CREATE TABLE "+wmTable+" (key text PRIMARY KEY)"); err != nil {
		b.Fatal(err)
	}
	s, err := pgdedup.New(ctx, p, pgdedup.WithTable(name), pgdedup.WithPruneEvery(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close()
		_, _ = p.Exec(context.Background(), "DROP TABLE IF EXISTS "+wmTable+", "+s.Table())
	})
	d, err := dedup.New(dedup.WithStore(s))
	if err != nil {
		b.Fatal(err)
	}
	wm := &wmw.Deduplicator{KeyFactory: func(m *message.Message) (string, error) { return m.UUID, nil },
		Repository: pgKeyRepository{p: p, table: wmTable}, Timeout: time.Minute}
	runDedupPair(b, d.Middleware(middlewareNoop), wm.Middleware(middlewareNoop))
}

// runDedupPair runs "new" (a message seen for the first time) and
// "duplicate" for Levee and Watermill, one after the other in one run.
func runDedupPair(b *testing.B, levee, watermill message.HandlerFunc) {
	for _, c := range []struct {
		name string
		h    message.HandlerFunc
	}{{"levee", levee}, {"watermill_deduplicator", watermill}} {
		b.Run(c.name+"/new", func(b *testing.B) {
			run := brokertest.Suffix() // a -count repetition sends new identities
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := c.h(message.NewMessage(run+c.name+strconv.Itoa(i), nil)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/duplicate", func(b *testing.B) {
			m := message.NewMessage(c.name+"-dup", nil)
			if _, err := c.h(m); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.h(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
