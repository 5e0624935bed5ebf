package dlqtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
)

// NewAttemptStore returns an empty attempt store for one subtest.
type NewAttemptStore func(t *testing.T) dlq.AttemptStore

// RunAttempts runs the conformance suite of dlq.AttemptStore
// implementations (adapters/redisstore and adapters/pgstore run it against
// their servers). Times are relative to the wall clock, since a store may
// expire records with the server's clock.
func RunAttempts(t *testing.T, newStore NewAttemptStore) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	t.Run("Counts", func(t *testing.T) {
		s := newStore(t)
		for i := 1; i <= 3; i++ {
			n, first, err := s.Fail(ctx, "payments", "m-1", now.Add(time.Duration(i)*time.Second), time.Hour)
			if err != nil || n != i || !first.Equal(now.Add(time.Second)) {
				t.Fatalf("failure %d: got %d, %v, %v want %d, %v", i, n, first, err, i, now.Add(time.Second))
			}
		}
	})
	t.Run("KeysAreDistinct", func(t *testing.T) {
		s := newStore(t)
		for _, k := range [][2]string{{"a:b", "c"}, {"a", "b:c"}, {"", "a:b:c"}, {"a:b:c", ""}, {"payments", "m-1"}, {"inventory", "m-1"}} {
			n, _, err := s.Fail(ctx, k[0], k[1], now, time.Hour)
			if err != nil || n != 1 {
				t.Errorf("handler %q uuid %q: got %d, %v want 1 (keys collide)", k[0], k[1], n, err)
			}
		}
	})
	t.Run("Expires", func(t *testing.T) {
		s := newStore(t)
		if n, _, err := s.Fail(ctx, "h", "m-exp", now.Add(-2*time.Hour), time.Hour); err != nil || n != 1 {
			t.Fatalf("first: got %d, %v", n, err)
		}
		n, first, err := s.Fail(ctx, "h", "m-exp", now, time.Hour)
		if err != nil || n != 1 || !first.Equal(now) {
			t.Errorf("after the ttl: got %d, %v, %v want 1, %v (a fresh record)", n, first, err, now)
		}
		if n, _, err := s.Fail(ctx, "h", "m-exp", now.Add(time.Minute), time.Hour); err != nil || n != 2 {
			t.Errorf("within the ttl: got %d, %v want 2", n, err)
		}
	})
	t.Run("ConcurrentIncrementsAreAtomic", func(t *testing.T) {
		s := newStore(t)
		const workers, each = 8, 25
		var mu sync.Mutex
		var got []int
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					n, _, err := s.Fail(ctx, "h", "m-conc", now, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got = append(got, n)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		for i, n := range got {
			if n != i+1 {
				t.Fatalf("counts are not 1..%d: %v", workers*each, got)
			}
		}
	})
	t.Run("HostileUUIDs", func(t *testing.T) { hostileUUIDs(t, newStore(t), now) })
	t.Run("ReadsWithoutCounting", func(t *testing.T) { readsWithoutCounting(t, newStore, now) })
	t.Run("TwoRetriersShareTheCount", func(t *testing.T) {
		s := newStore(t)
		const maxAttempts = 5
		if calls, attempts := TwoRetriers(t, s, maxAttempts); calls != maxAttempts || attempts != fmt.Sprint(maxAttempts) {
			t.Errorf("two routers sharing the store: %d handler calls, dead letter attempts %q; want exactly %d", calls, attempts, maxAttempts)
		}
	})
}

// TwoRetriers simulates two processes consuming one topic: two dlq.Retriers
// (each with its own in-process attempt table) share attempts (nil: do
// not share), and every failed delivery of a poison message is
// redelivered to the other one (each retry is deferred to a redelivery by
// a 1ms max hold). It returns how often the handler ran before the
// message was dead-lettered, and the dead letter's levee_attempts.
func TwoRetriers(t *testing.T, attempts dlq.AttemptStore, maxAttempts int) (int, string) {
	t.Helper()
	pub := &recPublisher{}
	var mu sync.Mutex
	calls := 0
	handler := func(*message.Message) ([]*message.Message, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil, fmt.Errorf("downstream unavailable")
	}
	var handlers []message.HandlerFunc
	for range 2 {
		opts := []dlq.Option{dlq.WithTopic("poison.dlq"), dlq.WithMaxHold(time.Millisecond),
			dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: maxAttempts}),
			dlq.WithJitter(func() float64 { return 1 })}
		if attempts != nil {
			opts = append(opts, dlq.WithAttemptStore(attempts))
		}
		r, err := dlq.New(pub, opts...)
		if err != nil {
			t.Fatal(err)
		}
		handlers = append(handlers, r.Middleware(handler))
	}
	uuid := fmt.Sprintf("poison-%d", time.Now().UnixNano())
	for delivery := range 4 * maxAttempts {
		msg := message.NewMessage(uuid, []byte(`{"order":1}`)) // a redelivery is a new *Message
		if _, err := handlers[delivery%2](msg); err == nil {
			break // dead-lettered, acked
		}
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.msgs) != 1 {
		t.Fatalf("dead letters: got %d want 1", len(pub.msgs))
	}
	mu.Lock()
	defer mu.Unlock()
	return calls, pub.msgs[0].Metadata[dlq.KeyAttempts]
}

type recPublisher struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (p *recPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *recPublisher) Close() error { return nil }

// hostileUUIDs checks that a producer's UUID, whatever it holds, is
// counted on its own: a UUID far longer than a database index entry, one
// with a NUL byte or invalid UTF-8, and one that looks like an encoded
// form of another. Each one's failures count 1 then 2, and no two collide.
func hostileUUIDs(t *testing.T, s dlq.AttemptStore, now time.Time) {
	ctx := context.Background()
	long := make([]byte, 64<<10)
	for i := range long {
		long[i] = byte('!' + (i*7919+i/94)%94) // printable, not compressible to an index entry
	}
	uuids := []string{string(long), string(long[:len(long)-1]) + "?", "a\x00", "a\uFFFD", "a\xff", "a\xfe", "\x7fhex:6100",
		"\x7fsha256:" + strings.Repeat("0", 64), strings.Repeat("\xff", 300)}
	for round := 1; round <= 2; round++ {
		for i, u := range uuids {
			n, _, err := s.Fail(ctx, "h", u, now, time.Hour)
			if err != nil || n != round {
				t.Errorf("uuid #%d (%d bytes), failure %d: got %d, %v want %d", i, len(u), round, n, err, round)
			}
		}
	}
	if r, ok := s.(dlq.AttemptReader); ok {
		for i, u := range uuids {
			if n, _, err := r.Attempts(ctx, "h", u, now); err != nil || n != 2 {
				t.Errorf("uuid #%d (%d bytes) read: got %d, %v want 2", i, len(u), n, err)
			}
		}
	}
}

// readsWithoutCounting checks a store that is a dlq.AttemptReader: a read
// returns the recorded count and adds nothing.
func readsWithoutCounting(t *testing.T, newStore NewAttemptStore, now time.Time) {
	ctx := context.Background()
	r, ok := newStore(t).(dlq.AttemptReader)
	if !ok {
		t.Skip("the store is no dlq.AttemptReader")
	}
	if n, _, err := r.Attempts(ctx, "h", "m-read", now); err != nil || n != 0 {
		t.Fatalf("no record: got %d, %v want 0", n, err)
	}
	for range 2 {
		if _, _, err := r.Fail(ctx, "h", "m-read", now, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if n, first, err := r.Attempts(ctx, "h", "m-read", now.Add(time.Second)); err != nil || n != 2 || !first.Equal(now) {
			t.Fatalf("after 2 failures: got %d, %v, %v want 2, %v (and reading adds nothing)", n, first, err, now)
		}
	}
	if n, _, err := r.Attempts(ctx, "other", "m-read", now); err != nil || n != 0 {
		t.Errorf("another handler: got %d, %v want 0", n, err)
	}
}
