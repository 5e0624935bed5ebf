package batch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/batch"
)

// TestInvariantsRandomized delivers messages at random times with random
// deadlines to a batch func that randomly succeeds, fails some messages,
// fails the whole batch or panics, and checks at-least-once invariants on
// every message: an ack only for a message the func processed and reported
// successful; a context error only for a message the func never saw; the
// func's own verdict for every message it saw, even when the message's
// context ended meanwhile; and the size and in-flight bounds. A message is
// passed to the func again only when its call panicked (the batcher
// isolates a panic by running the halves again).
func TestInvariantsRandomized(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { invariantsRun(t, seed) })
		})
	}
}

type verdict struct {
	seen  int   // times passed to the func
	err   error // the func's last verdict for it (nil: success)
	again int   // times passed again after a call that did not panic
}

func invariantsRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	var rmu sync.Mutex // guards rng once goroutines run
	randN := func(n int) int { rmu.Lock(); defer rmu.Unlock(); return rng.IntN(n) }

	maxSize, maxBytes, maxInFlight := 1+randN(8), 0, 1+randN(3)
	if randN(4) == 0 {
		// Large batches: several wake channels per batch.
		maxSize = 16 + randN(48)
	}
	opts := []batch.Option{batch.WithMaxSize(maxSize), batch.WithMaxInFlight(maxInFlight), batch.WithMaxWait(10 * time.Millisecond)}
	if randN(2) == 0 {
		maxBytes = 4 + randN(20)
		opts = append(opts, batch.WithMaxBytes(maxBytes))
	}

	var mu sync.Mutex
	verdicts := map[string]*verdict{}
	running, peak := 0, 0
	var violations []string
	fn := func(ctx context.Context, msgs []*message.Message) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		bytes := 0
		for _, m := range msgs {
			bytes += len(m.Payload)
		}
		if len(msgs) == 0 || len(msgs) > maxSize || (maxBytes > 0 && len(msgs) > 1 && bytes > maxBytes) {
			violations = append(violations, fmt.Sprintf("batch of %d messages, %d bytes", len(msgs), bytes))
		}
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()

		select {
		case <-time.After(time.Duration(randN(6)) * time.Millisecond):
		case <-ctx.Done():
		}
		set := func(i int, err error) {
			mu.Lock()
			v := verdicts[msgs[i].UUID]
			if v == nil {
				v = &verdict{}
				verdicts[msgs[i].UUID] = v
			}
			if v.seen > 0 && !errors.Is(v.err, errPanicked) {
				v.again++
			}
			v.seen++
			v.err = err
			mu.Unlock()
		}
		switch randN(5) {
		case 0: // whole batch fails
			werr := errors.New("whole")
			for i := range msgs {
				set(i, werr)
			}
			return werr
		case 1: // panic
			for i := range msgs {
				set(i, errPanicked)
			}
			panic("boom")
		case 2: // some fail
			failed := &batch.Errors{}
			for i, m := range msgs {
				if randN(2) == 0 {
					e := fmt.Errorf("failed %s", m.UUID)
					failed.Fail(i, e)
					set(i, e)
				} else {
					set(i, nil)
				}
			}
			return failed
		default:
			for i := range msgs {
				set(i, nil)
			}
			return nil
		}
	}
	b, err := batch.New(fn, opts...)
	if err != nil {
		t.Fatal(err)
	}

	// Contexts several messages share, as deliveries of one subscription
	// do: one batch watcher covers all of them.
	var shared [3]context.Context
	for k := range shared {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+randN(100))*time.Millisecond)
		defer cancel()
		shared[k] = ctx
	}
	const n = 120
	results := make([]error, n)
	all := make([]*message.Message, n)
	var wg sync.WaitGroup
	for i := range n {
		m := message.NewMessage(fmt.Sprintf("m%d", i), make([]byte, 1+randN(6)))
		all[i] = m
		delay := time.Duration(randN(100)) * time.Millisecond
		var cancel context.CancelFunc = func() {}
		switch randN(3) {
		case 0:
			var ctx context.Context
			ctx, cancel = context.WithTimeout(context.Background(), delay+time.Duration(randN(30))*time.Millisecond)
			m.SetContext(ctx)
		case 1:
			m.SetContext(context.WithValue(shared[randN(len(shared))], ctxKey{}, i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			time.Sleep(delay)
			_, results[i] = b.Handler(m)
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Errorf("bound violated: %s", v)
	}
	if peak > maxInFlight {
		t.Errorf("got %d batches at once, want at most %d", peak, maxInFlight)
	}
	var acked, left, failed int
	for _, res := range results {
		switch {
		case res == nil:
			acked++
		case errors.Is(res, context.DeadlineExceeded):
			left++
		default:
			failed++
		}
	}
	t.Logf("max_size=%d max_bytes=%d max_in_flight=%d: acked=%d left=%d failed=%d",
		maxSize, maxBytes, maxInFlight, acked, left, failed)
	for i, m := range all {
		v, res := verdicts[m.UUID], results[i]
		if v != nil && v.again > 0 {
			t.Errorf("%s passed to the func %d times, %d of them after a call that did not panic", m.UUID, v.seen, v.again)
		}
		switch {
		case res == nil:
			if v == nil || v.err != nil {
				t.Errorf("%s acked but the func did not report it successful (verdict %+v)", m.UUID, v)
			}
		case errors.Is(res, context.DeadlineExceeded):
			if v != nil {
				t.Errorf("%s got its context error but the func had it", m.UUID)
			}
		case v == nil:
			t.Errorf("%s got %v but the func never had it", m.UUID, res)
		case errors.Is(v.err, errPanicked):
			var pe *levee.PanicError
			if !errors.As(res, &pe) {
				t.Errorf("%s: got %v, want a *PanicError", m.UUID, res)
			}
		case v.err == nil || res.Error() != v.err.Error():
			t.Errorf("%s: got %v, want the func's verdict %v", m.UUID, res, v.err)
		}
	}
}

var errPanicked = errors.New("panicked")

type ctxKey struct{}
