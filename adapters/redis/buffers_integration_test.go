//go:build integration

package redis_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
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
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
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
	port := brokertest.RedisAddr()[strings.LastIndex(brokertest.RedisAddr(), ":")+1:]
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var p int
	_, _ = fmt.Sscanf(port, "%d", &p)
	want := fmt.Sprintf(":%04X", p)
	n := 0
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) >= 10 && fs[3] == "01" && inodes[fs[9]] && strings.HasSuffix(fs[2], want) {
				n++
			}
		}
	}
	return n
}
