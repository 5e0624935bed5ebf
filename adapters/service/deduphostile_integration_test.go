//go:build integration

package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
)

// letterCapture keeps the dead letters' class and error by order.
type letterCapture struct {
	inner message.Publisher
	mu    sync.Mutex
	got   []string // "<class>: <error>"
}

func (p *letterCapture) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	for _, m := range msgs {
		p.got = append(p.got, m.Metadata.Get(dlq.KeyErrorClass)+": "+m.Metadata.Get(dlq.KeyError))
	}
	p.mu.Unlock()
	return p.inner.Publish(topic, msgs...)
}

func (p *letterCapture) Close() error { return nil }

// TestDedupHostileIdentitiesInAService: a service over Redis streams
// (whose metadata carries any bytes) keyed by a metadata key, on the
// Redis and the PostgreSQL dedup stores. Identities with a NUL byte,
// invalid UTF-8 or the PostgreSQL store's escape prefix, each published
// twice under two UUIDs, run once each; a message whose key is missing,
// empty or 1 MB is dead-lettered once, class validation, with the reason,
// and never runs.
func TestDedupHostileIdentitiesInAService(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	brokertest.SkipIfDown(t, brokertest.PostgresURL())
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, brokertest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	stores := map[string]func(t *testing.T, prefix string) dedup.Store{
		"redis": func(t *testing.T, prefix string) dedup.Store {
			s, err := redisdedup.Open(ctx, brokertest.RedisURL(), prefix+":")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close(); redisDel(t, prefix) })
			return s
		},
		"postgres": func(t *testing.T, prefix string) dedup.Store {
			s, err := pgdedup.New(ctx, pool, pgdedup.WithTable(prefix), pgdedup.WithPruneEvery(0))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = s.Close()
				_, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{prefix}.Sanitize())
			})
			return s
		},
	}
	good := []string{"a\x00b", "bad\xff\xc3(", "\x7fhex:6b", "o-1", strings.Repeat("k", dedup.MaxKeyLen)}
	bad := map[string]*string{"missing": nil, "empty": new(string), "1 MB": ptr(strings.Repeat("x", 1<<20))}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			prefix := brokertest.Name("levee_ddhostile_" + name)
			store := open(t, prefix)
			y := fmt.Sprintf("transport: {kind: redis, concurrency: 4, redis: {addr: %q}}\nhandlers:\n  ingest:\n"+
				"    dlq: {retry: {max_attempts: 3, initial: 5ms, max: 20ms}}\n    dedup: {store: shared, key: {metadata: order_id}}\n", brokertest.RedisAddr())
			pub := &letterCapture{}
			svc, err := service.New(ctx, parse(t, y), config.Deps{Publisher: pub, DedupStore: store})
			if err != nil {
				t.Fatal(err)
			}
			pub.inner = svc.Transport.Publisher
			defer svc.Close()
			topic := prefix
			var mu sync.Mutex
			runs := map[string]int{}
			svc.Handle("ingest", topic, func(m *message.Message) error {
				mu.Lock()
				defer mu.Unlock()
				runs[m.Metadata.Get("order_id")]++
				return nil
			})
			rctx, cancel := context.WithCancel(ctx)
			ran := make(chan struct{})
			go func() { defer close(ran); _ = svc.Run(rctx) }()
			defer func() {
				cancel()
				<-ran
				_ = svc.Transport.DeleteTopics(context.Background(), topic, topic+".dlq")
			}()
			<-svc.Running()
			i := 0
			send := func(id *string) {
				i++
				m := message.NewMessage(fmt.Sprintf("u%02d", i), []byte("{}"))
				if id != nil {
					m.Metadata.Set("order_id", *id)
				}
				if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range good {
				send(&id)
				send(&id)
			}
			for _, id := range bad {
				send(id)
			}
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				n := len(runs)
				mu.Unlock()
				pub.mu.Lock()
				l := len(pub.got)
				pub.mu.Unlock()
				if n == len(good) && l == len(bad) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // late duplicates
			mu.Lock()
			defer mu.Unlock()
			pub.mu.Lock()
			defer pub.mu.Unlock()
			for _, id := range good {
				if runs[id] != 1 {
					t.Errorf("identity %q: ran %d times, want 1", id, runs[id])
				}
			}
			if len(runs) != len(good) {
				t.Errorf("ran %d identities, want %d: %q", len(runs), len(good), keys(runs))
			}
			if len(pub.got) != len(bad) {
				t.Errorf("dead letters: got %d, want %d: %q", len(pub.got), len(bad), pub.got)
			}
			for _, l := range pub.got {
				if !strings.HasPrefix(l, "validation: ") || !strings.Contains(l, "has no identity") || len(l) > 2048 {
					t.Errorf("dead letter reason: got %.200q, want class validation, no identity, bounded", l)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
