package middleware_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/middleware"
)

// Batch and dedup around a batch's end and its hold: the rig is in
// batch_dedup_test.go.

// TestBatchDedupShutdown: Shutdown whose context has ended, with messages
// in a queued batch behind a running one: the queued ones are Nacked
// with batch.ErrClosed, their claims released (their redelivery runs at
// once, not after the lease) and nothing is marked done; the running
// batch finishes and its messages are marked done.
func TestBatchDedupShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		r := newOnceRig(t, func(ctx context.Context, msgs []*message.Message) error {
			if msgs[0].UUID == "r1" {
				<-gate // the running batch ignores its context
			}
			return nil
		}, batch.WithMaxSize(1), batch.WithMaxInFlight(1))
		var mu sync.Mutex
		res := map[string]error{}
		var wg sync.WaitGroup
		for _, id := range []string{"r1", "q1", "q2"} {
			wg.Go(func() {
				_, err := r.h(message.NewMessage(id, nil))
				mu.Lock()
				res[id] = err
				mu.Unlock()
			})
			synctest.Wait()
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		shut := make(chan error, 1)
		go func() { shut <- r.b.Shutdown(ctx) }()
		synctest.Wait()
		close(gate)
		wg.Wait()
		if err := <-shut; !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: got %v, want context.Canceled", err)
		}
		if res["r1"] != nil {
			t.Errorf("r1 (running): got %v, want acked", res["r1"])
		}
		if done, _ := r.store.counts("r1"); done != 1 {
			t.Errorf("r1: done marks %d, want 1", done)
		}
		for _, id := range []string{"q1", "q2"} {
			if !errors.Is(res[id], batch.ErrClosed) {
				t.Errorf("%s (queued): got %v, want batch.ErrClosed (Nacked)", id, res[id])
			}
			if done, rel := r.store.counts(id); r.ran(id) != 0 || done != 0 || rel != 1 {
				t.Errorf("%s: ran %d, done marks %d, releases %d; want 0, 0, 1", id, r.ran(id), done, rel)
			}
			c, err := r.store.Claim(context.Background(), id, 1, time.Minute)
			if err != nil || c.Status != dedup.StatusClaimed {
				t.Errorf("%s's redelivery: claim %v %v, want claimed at once", id, c.Status, err)
			}
		}
		if n := len(r.letters()); n != 0 {
			t.Errorf("dead letters: got %d, want 0", n)
		}
	})
}

// TestBatchDedupLeaseWithinMaxWait: what a dedup lease not above the
// batch's max_wait does (docs/DEDUP.md, the lease must cover every wait
// inside the dedup slot). The claim is taken before
// the message joins its batch; in a batch that does not fill it lapses
// before the flush, and a duplicate delivered meanwhile takes the claim
// over, joins the same batch and is written too. (A PostgreSQL inbox
// whose func marks in its transaction still writes once: MarkDoneAll
// marks one of the two.)
func TestBatchDedupLeaseWithinMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newOnceRig(t, func(context.Context, []*message.Message) error { return nil },
			batch.WithMaxWait(time.Second))
		var err error
		if r.dd, err = dedup.New(dedup.WithStore(r.store), dedup.WithLease(100*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		h := middleware.NewStack().Dedup(r.dd.Middleware).Middleware(r.b.Handler)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = h(message.NewMessage("order-1", nil)) })
		time.Sleep(200 * time.Millisecond) // past the lease, within max_wait
		wg.Go(func() { _, _ = h(message.NewMessage("order-1", nil)) })
		wg.Wait()
		if got := r.ran("order-1"); got != 2 || r.dd.Stats().LeaseExpiries != 1 {
			t.Errorf("ran %d times, %d lease expiries; want 2 and 1 (the duplicate ran beside it)", got, r.dd.Stats().LeaseExpiries)
		}
	})
}

// TestBatchDedupLeaseWarnedInCode: the combination
// TestBatchDedupLeaseWithinMaxWait shows, built in code, is warned about
// at start when the Batcher is told the deduplicator's lease
// (batch.WithDedupLease(dd.Lease())), as config's Warnings does for YAML;
// a lease above max_wait is not.
func TestBatchDedupLeaseWarnedInCode(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lease time.Duration
		warn  bool
	}{
		{"lease within max_wait", 100 * time.Millisecond, true},
		{"default lease", dedup.DefaultLease, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dd, err := dedup.New(dedup.WithLease(tt.lease))
			if err != nil {
				t.Fatal(err)
			}
			logger := watermill.NewCaptureLogger()
			b, err := batch.New(func(context.Context, []*message.Message) error { return nil },
				batch.WithMaxWait(time.Second), batch.WithDedupLease(dd.Lease()), batch.WithLogger(logger))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var warned bool
			for _, m := range logger.Captured()[watermill.InfoLogLevel] {
				warned = warned || strings.Contains(m.Msg, "the dedup lease ("+tt.lease.String()+") is not above the batch's max_wait (1s)")
			}
			if warned != tt.warn {
				t.Errorf("got %v, want warned %v", logger.Captured()[watermill.InfoLogLevel], tt.warn)
			}
		})
	}
}

// TestBatchDedupShutdownOpenBatch: Shutdown whose context has ended,
// with two messages in an open batch: the batch does not start (its func
// is not called), and both messages are Nacked with batch.ErrClosed (no
// attempt, no dead letter), their claims released, nothing marked done.
// Before, the batch was flushed and raced the cancellation: its func ran
// before its context was cancelled in about 1 run in 10 under -race, and
// the messages were then marked done.
func TestBatchDedupShutdownOpenBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newOnceRig(t, func(ctx context.Context, _ []*message.Message) error {
			return ctx.Err()
		}, batch.WithMaxWait(time.Hour))
		var mu sync.Mutex
		res := map[string]error{}
		var wg sync.WaitGroup
		for _, id := range []string{"o1", "o2"} {
			wg.Go(func() {
				_, err := r.h(message.NewMessage(id, nil))
				mu.Lock()
				res[id] = err
				mu.Unlock()
			})
		}
		synctest.Wait() // both wait in the open batch
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.b.Shutdown(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: got %v, want context.Canceled", err)
		}
		wg.Wait()
		for _, id := range []string{"o1", "o2"} {
			if !errors.Is(res[id], batch.ErrClosed) {
				t.Errorf("%s: got %v, want batch.ErrClosed (Nacked: the batch did not start)", id, res[id])
			}
			if done, rel := r.store.counts(id); done != 0 || rel != 1 {
				t.Errorf("%s: done marks %d, releases %d; want 0, 1", id, done, rel)
			}
		}
		if n := len(r.letters()); n != 0 {
			t.Errorf("dead letters: got %d, want 0", n)
		}
		if c := r.br.Counts(); c.TotalFailures != 0 {
			t.Errorf("breaker: %d failures, want 0 (a shutdown is no failure)", c.TotalFailures)
		}
	})
}
