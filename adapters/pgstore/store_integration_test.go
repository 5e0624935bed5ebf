//go:build integration

package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/internal/brokertest"
)

// pgURL is the test server (internal/brokertest).
func pgURL() string { return brokertest.PostgresURL() }

// newSchema returns a unique schema name and drops it when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	return brokertest.Fresh(t, "levee_test", func(name string) error {
		s, err := pgstore.Open(context.Background(), pgURL(), pgstore.WithSchema(name), pgstore.WithoutMigrate())
		if err != nil {
			return err
		}
		defer s.Close()
		_, err = s.Pool().Exec(context.Background(), `DROP SCHEMA IF EXISTS `+name+` CASCADE`)
		return err
	})
}

func openStore(t testing.TB, schema string, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgURL(), append([]pgstore.Option{pgstore.WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dlqtest.Run(t, func(t *testing.T) dlqops.Store { return openStore(t, newSchema(t)) })
}

func TestConformanceRowByRow(t *testing.T) {
	dlqtest.Run(t, func(t *testing.T) dlqops.Store { return openStore(t, newSchema(t), pgstore.WithBatchRows(1)) })
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	schema := newSchema(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := pgstore.Open(context.Background(), pgURL(), pgstore.WithSchema(schema))
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			if err := s.Migrate(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s := openStore(t, schema)
	v, err := s.SchemaVersion(context.Background())
	migs, _ := pgstore.Migrations()
	if err != nil || v != migs[len(migs)-1].Version {
		t.Errorf("schema version %d, %v want %d", v, err, migs[len(migs)-1].Version)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	_, err := pgstore.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1",
		pgstore.WithDialTimeout(2*time.Second))
	if !errors.Is(err, pgstore.ErrUnreachable) || !errors.Is(err, dlqops.ErrStore) {
		t.Errorf("got %v want ErrUnreachable and dlqops.ErrStore", err)
	}
	if _, err := pgstore.Open(ctx, pgURL(), pgstore.WithSchema("bad-name; drop")); !errors.Is(err, pgstore.ErrInvalidConfig) {
		t.Errorf("bad schema: got %v", err)
	}
}

func TestBadInputRoundTrips(t *testing.T) {
	s := openStore(t, newSchema(t))
	ctx := context.Background()
	mon, err := dlqops.NewMonitor(s)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("nul-and-garbage", []byte{0, 0xff, 0xfe})
	msg.Metadata["k\x00"] = "v\x00\xff"
	// Invalid UTF-8 (which Kafka, NATS, Redis and AMQP carry as it came)
	// survives byte for byte: encoding/json replaced it with U+FFFD, and
	// "\xff" and "\xfe" became one key.
	hostile := map[string]string{"\xff": "a", "\xfe": "b", "k": "v\xff", "levee_pg_escaped": "a producer's"}
	for k, v := range hostile {
		msg.Metadata[k] = v
	}
	msg.Metadata[dlq.KeyOriginalTopic] = "or\x00ders"
	msg.Metadata[dlq.KeyFingerprint] = "garbage"
	if err := mon.Handle(msg); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	letters, err := s.List(ctx, dlqops.Filter{})
	if err != nil || len(letters) != 1 {
		t.Fatalf("stored %d letters, %v want 1", len(letters), err)
	}
	dl, err := s.Get(ctx, letters[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if dl.UUID != "nul-and-garbage" || dl.Fingerprint != dlqops.UnknownGroup || string(dl.Payload) != "\x00\xff\xfe" || dl.Metadata["k\x00"] != "v\x00\xff" {
		t.Errorf("got %+v", dl)
	}
	for k, v := range hostile {
		if got, ok := dl.Metadata[k]; !ok || got != v {
			t.Errorf("metadata %q: got %q (present %v), want %q", k, got, ok, v)
		}
	}
}

// TestConcurrentReplayersNeverDoubleSend runs four replayers, each with its
// own connection pool (as separate processes would), over the same 600
// dead letters: every letter is published exactly once.
func TestConcurrentReplayersNeverDoubleSend(t *testing.T) {
	schema := newSchema(t)
	seed := openStore(t, schema)
	ctx := context.Background()
	const total = 600
	var letters []dlqops.Record
	for i := range total {
		letters = append(letters, dlqtest.Letter(fmt.Sprintf("l%04d", i), "0123456789abcdef", "orders", "h", time.Duration(i)*time.Millisecond))
	}
	if n, err := seed.Add(ctx, letters...); err != nil || n != total {
		t.Fatalf("seed: %d %v", n, err)
	}
	pub := &countingPublisher{seen: map[string]int{}}
	var wg sync.WaitGroup
	for w := range 4 {
		s := openStore(t, schema)
		r, err := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0), dlqops.WithReplayBatch(13), dlqops.WithReplayOwner(fmt.Sprintf("r%d", w)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if _, err := r.Replay(ctx, dlqops.ReplaySelection{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.seen) != total {
		t.Errorf("replayed %d distinct letters want %d", len(pub.seen), total)
	}
	for id, n := range pub.seen {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
	groups, err := seed.Groups(ctx, dlqops.GroupQuery{})
	if err != nil || len(groups) != 1 || groups[0].Replayed != total {
		t.Errorf("groups after replay: %+v %v", groups, err)
	}
	// a second run sends nothing
	r, _ := dlqops.NewReplayer(seed, pub, dlqops.WithReplayRate(0))
	if rep, err := r.Replay(ctx, dlqops.ReplaySelection{}); err != nil || rep.Processed != 0 {
		t.Errorf("second run: %+v %v", rep, err)
	}
}

type countingPublisher struct {
	mu   sync.Mutex
	seen map[string]int
}

func (p *countingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.seen[m.Metadata[dlq.KeyReplayOf]]++
	}
	return nil
}

func (p *countingPublisher) Close() error { return nil }
