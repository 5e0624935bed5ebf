//go:build integration

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/redis/go-redis/v9"
)

// dlqopsRedisURL is the benchmark server (internal/brokertest).
func dlqopsRedisURL() string { return brokertest.RedisURL() }

// dlqopsRedisStore opens a Redis store under a fresh key prefix, whose
// keys are deleted at the end; it skips the benchmark when the server is
// unreachable.
func dlqopsRedisStore(b *testing.B, opts ...redisstore.Option) *redisstore.Store {
	b.Helper()
	prefix := brokertest.Name("levee_bench")
	ctx := context.Background()
	s, err := redisstore.Open(ctx, dlqopsRedisURL(), append([]redisstore.Option{redisstore.WithPrefix(prefix),
		redisstore.WithDialTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		b.Skipf("redis unreachable: %v", err)
	}
	b.Cleanup(func() {
		deleteRedisPrefix(ctx, s.Client(), prefix)
		_ = s.Close()
	})
	return s
}

func deleteRedisPrefix(ctx context.Context, c *redis.Client, prefix string) {
	iter := c.Scan(ctx, 0, prefix+":*", 5000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for chunk := range slices.Chunk(keys, 1000) {
		_ = c.Unlink(ctx, chunk...).Err()
	}
}

// BenchmarkDLQOpsIngestRedis measures the Monitor's ingest into Redis, one
// op per dead letter: "single" is one Add script per message
// (Monitor.Handle, as a router delivers them one by one), "batch-N" hands
// N messages to Monitor.Record, one Add script for all of them. "memory"
// is the in-memory store for reference.
func BenchmarkDLQOpsIngestRedis(b *testing.B) {
	dlqopsIngest(b, "single", func(b *testing.B) dlqops.Store { return dlqopsRedisStore(b) })
}

// BenchmarkDLQOpsIngestRedisConcurrent measures Monitor.Handle as a router
// with transport concurrency 32 calls it, with the Monitor's group commit
// (concurrent calls share one Add) and without it.
func BenchmarkDLQOpsIngestRedisConcurrent(b *testing.B) {
	dlqopsIngestConcurrent(b, "single", func(b *testing.B) dlqops.Store { return dlqopsRedisStore(b) })
}

// dlqopsRedisRows is the size of the Redis group-query set: 100,000 with
// LEVEE_BENCH_DLQ_REDIS_ROWS unset.
func dlqopsRedisRows() int {
	if v, err := strconv.Atoi(os.Getenv("LEVEE_BENCH_DLQ_REDIS_ROWS")); err == nil && v > 0 {
		return v
	}
	return 100_000
}

// BenchmarkDLQOpsGroupQueryRedis measures Store.Groups and the other
// operator queries over dlqopsRedisRows dead letters shaped like those of
// BenchmarkDLQOpsGroupQuery (50 groups, 10 topics, 20 handlers, 30 days,
// 10 % replayed), loaded through Store.Add in batches of 1,000.
func BenchmarkDLQOpsGroupQueryRedis(b *testing.B) {
	s := dlqopsRedisStore(b)
	ctx := context.Background()
	rows := dlqopsRedisRows()
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	memBefore := usedMemory(ctx, s.Client())
	start := time.Now()
	letters := make([]dlqops.Record, 0, 1000)
	flush := func() {
		if _, err := s.Add(ctx, letters...); err != nil {
			b.Fatal(err)
		}
		letters = letters[:0]
	}
	for i := 1; i <= rows; i++ {
		id := "g-" + strconv.Itoa(i)
		st := dlqops.StatusNew
		if i%10 == 0 {
			st = dlqops.StatusReplayed
		}
		at := base.Add(time.Duration(i%2592000) * time.Second)
		letters = append(letters, dlqops.Record{ID: id, UUID: id, OriginalUUID: id, DLQTopic: "orders.dlq",
			OriginalTopic: "orders." + strconv.Itoa(i%10), Handler: "handler-" + strconv.Itoa(i%20),
			Fingerprint: fmt.Sprintf("%016x", i%50), ErrorClass: "permanent", ErrorType: "*inventory.Error",
			Error: "inventory: sku unavailable in warehouse " + strconv.Itoa(i%7), Attempts: 5,
			FailedAt: at, ReceivedAt: base, Metadata: map[string]string{}, Payload: []byte(`{"order":"` + strconv.Itoa(i) + `"}`), Status: st})
		if len(letters) == cap(letters) {
			flush()
		}
	}
	if len(letters) > 0 {
		flush()
	}
	loaded := time.Since(start)
	mem := usedMemory(ctx, s.Client()) - memBefore
	b.Logf("loaded %d dead letters in %s (%.0f letters/s); server memory +%d MB (%d bytes a letter, other clients included)",
		rows, loaded.Round(time.Millisecond), float64(rows)/loaded.Seconds(), mem>>20, mem/int64(rows))
	window := base.Add(29 * 24 * time.Hour)
	cases := []struct {
		name string
		fn   func() (int, error)
	}{
		{"groups-by-fingerprint", func() (int, error) {
			g, err := s.Groups(ctx, dlqops.GroupQuery{WindowStart: window})
			return len(g), err
		}},
		{"groups-by-topic", func() (int, error) {
			g, err := s.Groups(ctx, dlqops.GroupQuery{By: dlqops.GroupByTopic, WindowStart: window})
			return len(g), err
		}},
		{"groups-one-topic", func() (int, error) { // scans that topic's letters
			g, err := s.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Topic: "orders.3"}, WindowStart: window})
			return len(g), err
		}},
		{"groups-new-only", func() (int, error) { // scans every new letter
			g, err := s.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}}, WindowStart: window})
			return len(g), err
		}},
		{"list-group-limit-100", func() (int, error) {
			l, err := s.List(ctx, dlqops.Filter{Group: "0000000000000007", Limit: 100})
			return len(l), err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n, err := c.fn()
				if err != nil || n == 0 {
					b.Fatalf("%d, %v", n, err)
				}
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// usedMemory returns used_memory (bytes) from INFO memory.
func usedMemory(ctx context.Context, c *redis.Client) int64 {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkDLQSharedAttempts measures the failure path with the attempt
// count shared in Redis or PostgreSQL (dlq.WithAttemptStore) against the
// in-process count: one op is one poison message, failing transiently 3
// times (backoff 1ns) and then dead-lettered, so 3 store round trips.
func BenchmarkDLQSharedAttempts(b *testing.B) {
	fail := func(*message.Message) ([]*message.Message, error) { return nil, errors.New("downstream unavailable") }
	run := func(b *testing.B, store dlq.AttemptStore) {
		opts := []dlq.Option{dlq.WithTopic("orders.dlq"),
			dlq.WithBackoff(dlq.Backoff{Initial: time.Nanosecond, Max: time.Nanosecond, Multiplier: 1, MaxAttempts: 3})}
		if store != nil {
			opts = append(opts, dlq.WithAttemptStore(store))
		}
		r, err := dlq.New(dlqNopPublisher{}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		h := r.Middleware(fail)
		prefix := fmt.Sprintf("bench-%d-", time.Now().UnixNano())
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := h(message.NewMessage(prefix+strconv.Itoa(i), []byte(`{"id":1}`))); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("local", func(b *testing.B) { run(b, nil) })
	b.Run("redis", func(b *testing.B) { run(b, dlqopsRedisStore(b).Attempts()) })
	b.Run("postgres", func(b *testing.B) { run(b, dlqopsStore(b).Attempts()) })
}
