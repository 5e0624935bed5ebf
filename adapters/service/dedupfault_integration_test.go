//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// countingPublisher counts what the dlq publishes (dead letters) and
// hands it to the transport's publisher.
type countingPublisher struct {
	inner message.Publisher
	n     atomic.Int64
}

func (p *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.n.Add(int64(len(msgs)))
	return p.inner.Publish(topic, msgs...)
}

func (p *countingPublisher) Close() error { return nil }

// errCounting is a dedup store that counts its failed calls.
type errCounting struct {
	dedup.Store
	claims, finishes atomic.Int64
}

func (s *errCounting) Claim(ctx context.Context, key string, token uint64, lease time.Duration) (dedup.Claim, error) {
	c, err := s.Store.Claim(ctx, key, token, lease)
	if err != nil {
		s.claims.Add(1)
	}
	return c, err
}

func (s *errCounting) Done(ctx context.Context, key string, token uint64, window time.Duration) error {
	err := s.Store.Done(ctx, key, token, window)
	if err != nil {
		s.finishes.Add(1)
	}
	return err
}

// TestDedupStoreOutageWhileTheBreakerDrains: the whole stack from a
// levee.yaml (dlq, dedup on the PostgreSQL inbox, breaker with a drain,
// rate limit) over NATS JetStream. The downstream fails for a while, so
// the breaker opens and then drains; meanwhile every connection of the
// dedup store is terminated again and again (pg_terminate_backend on
// the pool's application_name). At-least-once must hold: every message's
// side effect happens, no message is dead-lettered (a store outage
// defers, a deferral is never dead-lettered).
func TestDedupStoreOutageWhileTheBreakerDrains(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.NATSURL())
	brokertest.SkipIfDown(t, brokertest.PostgresURL())
	ctx := context.Background()
	app := brokertest.Name("levee_ddfault")
	u, err := url.Parse(brokertest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	admin, err := pgxpool.New(ctx, brokertest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	inbox, err := pgdedup.New(ctx, pool, pgdedup.WithTable(app), pgdedup.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = inbox.Close()
		_, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+inbox.Table())
	}()

	topic := app
	store := &errCounting{Store: inbox}
	y := fmt.Sprintf(`transport: {kind: nats, nats: {url: %q}}
handlers:
  pay:
    recover: true
    dlq:
      retry: {max_attempts: 50, initial: 5ms, max: 20ms}
      max_hold: 300ms
    dedup: {store: shared, lease: 3s, store_timeout: 300ms, busy_retry: 100ms}
    breaker:
      consecutive_failures: 5
      open_for: 300ms
      half_open_probes: 1
      max_hold: 300ms
      drain: {window: 1s, start: 20%%, rate: 300/s}
    ratelimit: {rate: 400/s, burst: 20}
`, brokertest.NATSURL())
	pub := &countingPublisher{}
	svc, err := service.New(ctx, parse(t, y), config.Deps{Publisher: pub, DedupStore: store})
	if err != nil {
		t.Fatal(err)
	}
	pub.inner = svc.Transport.Publisher
	defer svc.Close()
	defer func() { _ = svc.Transport.DeleteTopics(context.Background(), topic, topic+".dlq") }()

	const n = 300
	var (
		mu      sync.Mutex
		effects = map[string]int{}
		start   atomic.Int64 // Unix ns; the downstream fails for 600ms from it
		done    = make(chan struct{})
	)
	svc.Handle("pay", topic, func(msg *message.Message) error {
		if time.Since(time.Unix(0, start.Load())) < 600*time.Millisecond {
			return errors.New("downstream down")
		}
		mu.Lock()
		defer mu.Unlock()
		effects[msg.UUID]++
		if len(effects) == n && effects[msg.UUID] == 1 {
			close(done)
		}
		return nil
	})
	for i := range n {
		if err := svc.Transport.Publisher.Publish(topic, message.NewMessage(fmt.Sprintf("m%03d", i), []byte("{}"))); err != nil {
			t.Fatal(err)
		}
	}
	start.Store(time.Now().UnixNano())
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = svc.Run(rctx) }()
	<-svc.Running()

	// Terminate the store's connections every 50ms for 2s.
	var kills atomic.Int64
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			tag, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app)
			if err == nil {
				kills.Add(tag.RowsAffected())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
	}
	<-killDone
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, c := range effects {
		if c > 1 {
			twice++
		}
	}
	t.Logf("store errors: %d claims (deferred), %d done marks", store.claims.Load(), store.finishes.Load())
	t.Logf("connections terminated: %d; messages with their side effect: %d of %d, %d of them more than once; dead letters: %d",
		kills.Load(), len(effects), n, twice, pub.n.Load())
	if len(effects) != n {
		t.Errorf("side effects of %d messages, want %d: messages lost", len(effects), n)
	}
	if got := pub.n.Load(); got != 0 {
		t.Errorf("dead letters: got %d, want 0 (a store outage defers)", got)
	}
}
