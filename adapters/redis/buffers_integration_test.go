//go:build integration

package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/levee-dev/levee/adapters/redis"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestIdleMembersHoldSmallBuffers: a member waiting for entries keeps its
// connections open, each with a read and a write buffer. go-redis's
// default buffers are 256 KiB each way, so a service of 40 handlers at
// concurrency 4 (643 connections) held 330 MB of heap idle; each
// connection now holds 2 × MemberBufferSize.
func TestIdleMembersHoldSmallBuffers(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	heap := brokertest.HeapInUse
	before := heap()
	tr, err := redis.New(context.Background(), redis.Config{Addr: brokertest.RedisAddr()},
		transport.Settings{Concurrency: 16, ConsumerGroup: "g" + watermill.NewShortUUID()})
	if err != nil {
		t.Fatal(err)
	}
	topics := []string{brokertest.Name("buffers_a"), brokertest.Name("buffers_b")}
	defer func() { _ = tr.DeleteTopics(context.Background(), topics); _ = tr.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, topic := range topics {
		if _, err := tr.Subscriber.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	// The members block in their reads; each then has its connections open.
	deadline := time.Now().Add(10 * time.Second)
	conns := 0
	for ; time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if conns = redisConns(t); conns >= 2*16*len(topics) {
			break
		}
	}
	if conns < 16*len(topics) {
		t.Fatalf("%d connections to Redis, want at least one per member (%d)", conns, 16*len(topics))
	}
	perConn := (heap() - before) / uint64(conns)
	t.Logf("%d connections, %d KiB of heap each", conns, perConn>>10)
	if limit := uint64(4 * redis.MemberBufferSize); perConn > limit {
		t.Errorf("%d KiB of heap per connection, want at most %d KiB", perConn>>10, limit>>10)
	}
}

// redisConns counts this process's established connections to Redis.
func redisConns(t *testing.T) int {
	t.Helper()
	addr := brokertest.RedisAddr()
	port, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if err != nil {
		t.Fatalf("redis address %q: %v", addr, err)
	}
	return brokertest.ConnsTo(port)
}
