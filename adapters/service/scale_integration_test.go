//go:build integration

package service_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// scaleYAML is a service of n handlers: every one recovers, dead-letters
// and times out; some share a breaker, a scheduler, a limiter, and some
// deduplicate in the shared store.
func scaleYAML(transport, store string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "transport: %s\nstore: %s\n", transport, store)
	b.WriteString("schedulers:\n  gateway: {slots: 4}\nbreakers:\n  provider: {consecutive_failures: 50, open_for: 1s}\nhandlers:\n")
	for i := range n {
		fmt.Fprintf(&b, "  h%02d:\n    recover: true\n    timeout: 10s\n    dlq: {retry: {max_attempts: 3, initial: 5ms, max: 20ms}}\n", i)
		switch i % 5 {
		case 1:
			b.WriteString("    breaker: {shared: provider}\n")
		case 2:
			b.WriteString("    priority: {scheduler: gateway}\n")
		case 3:
			b.WriteString("    ratelimit: {rate: 1000/s, burst: 10}\n")
		case 4:
			b.WriteString("    dedup: {store: shared}\n")
		}
	}
	return b.String()
}

type scaleCase struct {
	transport, store string
	port             int // the server's, to count connections
	maxConns         int // the most connections the service may open, 0: not checked
	dedup            func(t *testing.T) dedup.Store
}

// scaleSize is the service's size: LEVEE_SCALE_HANDLERS and
// LEVEE_SCALE_CONCURRENCY for a larger run, 40 handlers at concurrency 2
// by default (PostgreSQL's connections are shared with other tests).
func scaleSize() (handlers, concurrency int) {
	handlers, _ = strconv.Atoi(os.Getenv("LEVEE_SCALE_HANDLERS"))
	concurrency, _ = strconv.Atoi(os.Getenv("LEVEE_SCALE_CONCURRENCY"))
	return cmp.Or(handlers, 40), cmp.Or(concurrency, 2)
}

// TestManyHandlers runs a service of 40 handlers from one file (every
// concern on some, a breaker and a scheduler shared, dedup and dead
// letters in the real stores) over each broker: it starts, is closed
// with messages in flight, and a second service processes every message
// the first did not finish; Close returns well within the router's 30 s
// close timeout, and over PostgreSQL the service opens no more
// connections than max_conns and the stores' pools, not one per handler.
// It logs what a user would size for: start and close times,
// connections, goroutines and heap.
func TestManyHandlers(t *testing.T) {
	n, conc := scaleSize()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kaddr := cluster.ListenAddrs()[0]
	kport, _ := strconv.Atoi(kaddr[strings.LastIndex(kaddr, ":")+1:])
	redisPrefix := brokertest.Name("scale")
	t.Cleanup(func() { redisDel(t, redisPrefix) })
	redisStore := fmt.Sprintf("{kind: redis, url: %q, prefix: %s}", brokertest.RedisURL(), redisPrefix)
	redisDedup := func(t *testing.T) dedup.Store {
		s, err := redisdedup.Open(context.Background(), brokertest.RedisURL(), redisPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	schema := brokertest.Name("scale")
	// The transport's max_conns (8 × concurrency + 4) and the store's and
	// the dedup store's pools (pgxpool's default, max(4, CPUs)).
	pgMax := 8*conc + 4 + 2*max(4, runtime.NumCPU())
	cases := map[string]scaleCase{
		"amqp":  {fmt.Sprintf("{kind: amqp, concurrency: %d, amqp: {url: %q}}", conc, brokertest.AMQPURL()), redisStore, 5672, 0, redisDedup},
		"nats":  {fmt.Sprintf("{kind: nats, concurrency: %d, nats: {url: %q}}", conc, brokertest.NATSURL()), redisStore, 4222, 0, redisDedup},
		"redis": {fmt.Sprintf("{kind: redis, concurrency: %d, redis: {addr: %q}}", conc, brokertest.RedisAddr()), redisStore, 6379, 0, redisDedup},
		"kafka": {fmt.Sprintf("{kind: kafka, concurrency: %d, consumer_group: %s, kafka: {brokers: [%q]}}", conc, brokertest.Name("scale"), kaddr), redisStore, kport, 0, redisDedup},
		"postgres": {fmt.Sprintf("{kind: postgres, concurrency: %d, postgres: {url: %q, poll_interval: 20ms}}", conc, brokertest.PostgresURL()),
			fmt.Sprintf("{kind: postgres, url: %q, schema: %s}", brokertest.PostgresURL(), schema), 5432, pgMax,
			func(t *testing.T) dedup.Store {
				s, err := pgdedup.Open(context.Background(), brokertest.PostgresURL(), pgdedup.WithTable(schema+"_dedup"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					_ = s.Close()
					pgExec(t, "DROP TABLE IF EXISTS "+s.Table())
					pgExec(t, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
				})
				return s
			}},
	}
	for _, kind := range []string{"amqp", "nats", "redis", "kafka", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			brokertest.SkipIfDown(t, fmt.Sprintf("127.0.0.1:%d", cases[kind].port))
			scaleRun(t, cases[kind], n, conc)
		})
	}
}

func heapMB() float64 { return float64(brokertest.HeapInUse()) / (1 << 20) }

// scaleDone counts each message's completed handler calls.
type scaleDone struct {
	mu       sync.Mutex
	done     map[string]int
	inFlight int
}

func (d *scaleDone) counts(ids []string) (missing, twice int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		switch d.done[id] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	return missing, twice
}

// scaleStart starts a service of n handlers on prefix's topics whose
// calls take hold (or end with the message's context).
func scaleStart(t *testing.T, c scaleCase, prefix string, n int, d *scaleDone, hold time.Duration) (*service.Service, context.CancelFunc, time.Duration) {
	t.Helper()
	t0 := time.Now()
	svc, err := service.New(context.Background(), parse(t, scaleYAML(c.transport, c.store, n)), config.Deps{DedupStore: c.dedup(t)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("h%02d", i)
		svc.Handle(name, prefix+name, func(msg *message.Message) error {
			d.mu.Lock()
			d.inFlight++
			d.mu.Unlock()
			defer func() { d.mu.Lock(); d.inFlight--; d.mu.Unlock() }()
			select {
			case <-time.After(hold):
			case <-msg.Context().Done():
				return msg.Context().Err()
			}
			d.mu.Lock()
			d.done[msg.UUID]++
			d.mu.Unlock()
			return nil
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	select {
	case <-svc.Running():
	case err := <-ran:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	return svc, cancel, time.Since(t0)
}

func scaleRun(t *testing.T, c scaleCase, n, conc int) {
	prefix := brokertest.Name("scale") + "_"
	var topics []string
	for i := range n {
		topics = append(topics, fmt.Sprintf("%sh%02d", prefix, i), fmt.Sprintf("%sh%02d.dlq", prefix, i))
	}
	g0, m0 := runtime.NumGoroutine(), heapMB()
	d := &scaleDone{done: map[string]int{}}
	svc, cancel, took := scaleStart(t, c, prefix, n, d, 500*time.Millisecond)
	t.Logf("%d handlers at concurrency %d: started in %v; %d connections, %d goroutines, heap %.1f MB (before: %d goroutines, %.1f MB)",
		n, conc, took.Round(time.Millisecond), brokertest.ConnsTo(c.port), runtime.NumGoroutine(), heapMB(), g0, m0)
	var sent []string
	for i := range n {
		for range conc {
			m := message.NewMessage(watermill.NewUUID(), []byte("x"))
			sent = append(sent, m.UUID)
			if err := svc.Transport.Publisher.Publish(fmt.Sprintf("%sh%02d", prefix, i), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Close while handlers hold messages.
	svcWait(t, "messages in flight", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.inFlight >= min(n, 8) })
	d.mu.Lock()
	inFlight := d.inFlight
	d.mu.Unlock()
	conns := brokertest.ConnsTo(c.port)
	if c.maxConns > 0 && conns > c.maxConns {
		t.Errorf("%d connections with messages in flight, want at most %d (max_conns and the stores' pools)", conns, c.maxConns)
	}
	t0 := time.Now()
	err := svc.Close()
	cancel()
	closed := time.Since(t0)
	if err != nil {
		t.Errorf("Close: %v", err)
	}
	if closed > svcStopWithin {
		t.Errorf("closed in %v, want within %v (the router gives its handlers 30s)", closed, svcStopWithin)
	}
	missing, _ := d.counts(sent)
	t.Logf("closed in %v with %d messages in flight, %d connections; %d of %d finished", closed.Round(time.Millisecond), inFlight, conns, len(sent)-missing, len(sent))

	next, cancelNext, _ := scaleStart(t, c, prefix, n, d, 0)
	defer func() {
		cancelNext()
		_ = next.Transport.DeleteTopics(context.Background(), topics...)
		_ = next.Close()
	}()
	svcWait(t, "every message processed by the next service", func() bool { m, _ := d.counts(sent); return m == 0 })
	_, twice := d.counts(sent)
	t.Logf("every message processed; %d twice (at-least-once: a handler that finished as Close cut its ack)", twice)
}

// pgExec runs a statement on the test server (cleanup).
func pgExec(t *testing.T, sql string) {
	conn, err := pgx.Connect(context.Background(), brokertest.PostgresURL())
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// redisDel deletes the keys under prefix (cleanup).
func redisDel(t *testing.T, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: brokertest.RedisAddr()})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleanup: %v", err)
	}
}
