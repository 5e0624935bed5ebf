package middleware_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// The combination a user picks for "insert orders in batches, exactly
// once": dlq, dedup and a breaker in front of a Batcher (docs/BATCH.md,
// docs/DEDUP.md). Each test runs the whole stack in a synctest bubble.

// markStore is a memory dedup store that counts the done marks and
// releases per key.
type markStore struct {
	*dedup.MemStore
	mu       sync.Mutex
	done     map[string]int
	released map[string]int
}

func (s *markStore) Done(ctx context.Context, key string, token uint64, window time.Duration) error {
	s.mu.Lock()
	s.done[key]++
	s.mu.Unlock()
	return s.MemStore.Done(ctx, key, token, window)
}

func (s *markStore) Release(ctx context.Context, key string, token uint64) error {
	s.mu.Lock()
	s.released[key]++
	s.mu.Unlock()
	return s.MemStore.Release(ctx, key, token)
}

func (s *markStore) counts(key string) (done, released int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[key], s.released[key]
}

// onceRig is the stack under test and what it recorded.
type onceRig struct {
	h     message.HandlerFunc
	b     *batch.Batcher
	dd    *dedup.Dedup
	br    *breaker.Breaker
	store *markStore
	pub   *capture

	mu   sync.Mutex
	runs map[string]int // batch func calls that had the message
}

func (r *onceRig) ran(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

// newOnceRig builds recover, dlq (3 attempts, in-process waits within
// 10s), dedup, breaker (a failure ratio, so it counts successes; never trips) and a Batcher of 4 around fn.
func newOnceRig(t *testing.T, fn batch.Func, bopts ...batch.Option) *onceRig {
	t.Helper()
	ms, err := dedup.NewMemStore(100)
	if err != nil {
		t.Fatal(err)
	}
	r := &onceRig{store: &markStore{MemStore: ms, done: map[string]int{}, released: map[string]int{}},
		pub: &capture{}, runs: map[string]int{}}
	r.b, err = batch.New(func(ctx context.Context, msgs []*message.Message) error {
		r.mu.Lock()
		for _, m := range msgs {
			r.runs[m.UUID]++
		}
		r.mu.Unlock()
		return fn(ctx, msgs)
	}, append([]batch.Option{batch.WithMaxSize(4)}, bopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.b.Close() })
	d, err := dlq.New(r.pub, dlq.WithTopic("orders.dlq"), dlq.WithMaxAttempts(3), dlq.WithMaxHold(10*time.Second),
		dlq.WithJitter(func() float64 { return 1 }))
	if err != nil {
		t.Fatal(err)
	}
	if r.dd, err = dedup.New(dedup.WithStore(r.store)); err != nil {
		t.Fatal(err)
	}
	if r.br, err = breaker.New(breaker.WithFailureRatio(0.99, 1000)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.br.Close() })
	r.h = middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Dedup(r.dd.Middleware).
		Breaker(r.br.Middleware).Middleware(r.b.Handler)
	return r
}

// deliverAll delivers each id at once (one goroutine each) and returns
// their results once all returned.
func (r *onceRig) deliverAll(ids ...string) map[string]error {
	var mu sync.Mutex
	out := map[string]error{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			_, err := r.h(message.NewMessage(id, []byte(id)))
			mu.Lock()
			out[id] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (r *onceRig) letters() []string {
	r.pub.mu.Lock()
	defer r.pub.mu.Unlock()
	var ids []string
	for _, m := range r.pub.msgs {
		ids = append(ids, m.UUID)
	}
	return ids
}

// TestBatchDedupPartialFailure: a batch whose func names one message as
// failed. Only that one is retried (alone, in later batches) and
// dead-lettered after max attempts; its claim is released after each
// attempt, so each retry claims at once instead of waiting out the lease;
// the others are marked done exactly once, and their redelivery is acked
// without running. The breaker counts one failure per failed attempt.
func TestBatchDedupPartialFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newOnceRig(t, func(_ context.Context, msgs []*message.Message) error {
			for i, m := range msgs {
				if m.UUID == "bad" {
					return (&batch.Errors{}).Fail(i, errors.New("violates check constraint"))
				}
			}
			return nil
		})
		start := time.Now()
		for id, err := range r.deliverAll("a", "bad", "c", "d") {
			if err != nil {
				t.Errorf("%s: got %v, want acked (written or dead-lettered)", id, err)
			}
		}
		if took := time.Since(start); took >= r.dd.Lease() {
			t.Errorf("3 attempts took %s, want less than the lease %s (the failed claim released at once)", took, r.dd.Lease())
		}
		if got := r.letters(); !slices.Equal(got, []string{"bad"}) {
			t.Fatalf("dead letters: got %v, want [bad]", got)
		}
		if got := r.pub.msgs[0].Metadata.Get(dlq.KeyAttempts); got != "3" {
			t.Errorf("bad's attempts: got %q, want 3", got)
		}
		for _, id := range []string{"a", "c", "d"} {
			if done, rel := r.store.counts(id); r.ran(id) != 1 || done != 1 || rel != 0 {
				t.Errorf("%s: ran %d, done marks %d, releases %d; want 1, 1, 0", id, r.ran(id), done, rel)
			}
		}
		if done, rel := r.store.counts("bad"); r.ran("bad") != 3 || done != 0 || rel != 3 {
			t.Errorf("bad: ran %d, done marks %d, releases %d; want 3, 0, 3", r.ran("bad"), done, rel)
		}
		if c := r.br.Counts(); c.TotalFailures != 3 || c.TotalSuccesses != 3 {
			t.Errorf("breaker: got %d failures, %d successes; want 3 (bad's attempts) and 3", c.TotalFailures, c.TotalSuccesses)
		}
		for id, err := range r.deliverAll("a", "c", "d") {
			if err != nil {
				t.Errorf("redelivered %s: got %v, want acked", id, err)
			}
		}
		if r.ran("a")+r.ran("c")+r.ran("d") != 3 || r.dd.Stats().Duplicates != 3 {
			t.Errorf("redeliveries: ran a %d c %d d %d, %d duplicates; want 1 each and 3 duplicates",
				r.ran("a"), r.ran("c"), r.ran("d"), r.dd.Stats().Duplicates)
		}
		if w := r.dd.Stats().Waited; w != 0 {
			t.Errorf("deferred as in progress %d times, want 0", w)
		}
	})
}

// TestBatchDedupWholeBatchFails: a func that fails the whole batch. Every
// message's claim is released after each attempt, each is retried with
// backoff and dead-lettered after max attempts, none is marked done, and
// the breaker counts every message of every failed batch.
func TestBatchDedupWholeBatchFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var calls []time.Time
		r := newOnceRig(t, func(context.Context, []*message.Message) error {
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
			return errors.New("connection refused")
		})
		for id, err := range r.deliverAll("a", "b", "c", "d") {
			if err != nil {
				t.Errorf("%s: got %v, want dead-lettered (acked)", id, err)
			}
		}
		got := r.letters()
		slices.Sort(got)
		if !slices.Equal(got, []string{"a", "b", "c", "d"}) {
			t.Fatalf("dead letters: got %v, want all four", got)
		}
		for _, id := range got {
			if done, rel := r.store.counts(id); r.ran(id) != 3 || done != 0 || rel != 3 {
				t.Errorf("%s: ran %d, done marks %d, releases %d; want 3, 0, 3", id, r.ran(id), done, rel)
			}
		}
		// Backoff 100ms then 200ms (jitter 1), each retry joining a batch
		// that then waits for its fellows or max_wait.
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap < 100*time.Millisecond {
				t.Errorf("batch call %d came %s after the previous, want at least the first backoff 100ms", i, gap)
			}
		}
		if c := r.br.Counts(); c.TotalFailures != 12 || c.TotalSuccesses != 0 {
			t.Errorf("breaker: got %d failures, %d successes; want 12 (4 messages x 3 attempts), 0", c.TotalFailures, c.TotalSuccesses)
		}
	})
}

// TestBatchDedupDuplicateWhileBatched: a second delivery of a message
// that waits in an open batch is deferred (not run beside it), and once
// the first is written the dlq's in-process wait finds it done and acks
// it, long before the lease: it is not held behind the claim.
func TestBatchDedupDuplicateWhileBatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newOnceRig(t, func(context.Context, []*message.Message) error { return nil },
			batch.WithMaxWait(time.Second))
		first := make(chan error, 1)
		go func() {
			_, err := r.h(message.NewMessage("order-1", nil))
			first <- err
		}()
		synctest.Wait() // order-1 waits in its open batch
		start := time.Now()
		if _, err := r.h(message.NewMessage("order-1", nil)); err != nil {
			t.Errorf("duplicate: got %v, want acked", err)
		}
		if err := <-first; err != nil {
			t.Errorf("first: got %v, want acked", err)
		}
		if took := time.Since(start); took >= r.dd.Lease() {
			t.Errorf("duplicate settled after %s, want before the lease %s", took, r.dd.Lease())
		}
		s := r.dd.Stats()
		if r.ran("order-1") != 1 || s.Waited == 0 || s.Duplicates != 1 {
			t.Errorf("ran %d, deferred %d, duplicates %d; want 1, at least 1, 1", r.ran("order-1"), s.Waited, s.Duplicates)
		}
		if done, _ := r.store.counts("order-1"); done != 1 {
			t.Errorf("done marks: got %d, want 1", done)
		}
	})
}

// TestBatchDedupPanicIsolation: a func that panics on one message. The
// batcher splits and reruns; the others are marked done once, their
// redelivery does not run them again, and the poison is dead-lettered
// with its stack and its claim released, never marked done.
func TestBatchDedupPanicIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newOnceRig(t, func(_ context.Context, msgs []*message.Message) error {
			for _, m := range msgs {
				if m.UUID == "poison" {
					panic("poison payload")
				}
			}
			return nil
		})
		for id, err := range r.deliverAll("a", "poison", "b", "c") {
			if err != nil {
				t.Errorf("%s: got %v, want acked", id, err)
			}
		}
		if got := r.letters(); !slices.Equal(got, []string{"poison"}) {
			t.Fatalf("dead letters: got %v, want [poison]", got)
		}
		if r.pub.msgs[0].Metadata.Get(dlq.KeyStack) == "" || r.pub.msgs[0].Metadata.Get(dlq.KeyErrorClass) != "panic" {
			t.Errorf("poison's letter: class %q, stack %d bytes; want panic and a stack",
				r.pub.msgs[0].Metadata.Get(dlq.KeyErrorClass), len(r.pub.msgs[0].Metadata.Get(dlq.KeyStack)))
		}
		if done, rel := r.store.counts("poison"); done != 0 || rel != 1 {
			t.Errorf("poison: done marks %d, releases %d; want 0, 1", done, rel)
		}
		ran := map[string]int{}
		for _, id := range []string{"a", "b", "c"} {
			ran[id] = r.ran(id)
			if done, rel := r.store.counts(id); done != 1 || rel != 0 {
				t.Errorf("%s: done marks %d, releases %d; want 1, 0", id, done, rel)
			}
		}
		for id, err := range r.deliverAll("a", "b", "c") {
			if err != nil {
				t.Errorf("redelivered %s: got %v, want acked", id, err)
			}
		}
		for id, n := range ran {
			if r.ran(id) != n {
				t.Errorf("redelivered %s ran again (%d calls, %d before)", id, r.ran(id), n)
			}
		}
	})
}
