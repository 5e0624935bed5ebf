package middleware_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// capture is a publisher that keeps what it is given.
type capture struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *capture) Close() error { return nil }

// TestHangingBatchIsDeadLetteredAfterMaxAttempts: a batch func that hangs
// until its context ends, behind dlq and timeout. Found by the chaos suite
// (docs/RELIABILITY.md): the batcher cancelled the func's context once the
// message timed out, the func returned context.Canceled, and the dlq took
// that for a shutdown and counted no attempt, so the message got more
// handler calls than max attempts (without end, for a batch that always
// hangs). Every call is an attempt: dead-lettered, class exhausted, after
// exactly max attempts.
func TestHangingBatchIsDeadLetteredAfterMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxAttempts = 3
		var calls atomic.Int32
		b, err := batch.New(func(ctx context.Context, _ []*message.Message) error {
			calls.Add(1)
			<-ctx.Done()
			return ctx.Err()
		}, batch.WithMaxSize(1))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		pub := &capture{}
		bo := dlq.DefaultBackoff()
		bo.MaxAttempts, bo.Initial, bo.Max = maxAttempts, time.Millisecond, time.Millisecond
		d, err := dlq.New(pub, dlq.WithBackoff(bo), dlq.WithTopic("t.dlq"))
		if err != nil {
			t.Fatal(err)
		}
		to, err := middleware.NewTimeout(100 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		h := middleware.NewStack().DLQ(d.Middleware).Timeout(to.Middleware).Middleware(b.Handler)
		var deliveries int
		for deliveries = 1; deliveries <= 10; deliveries++ {
			if _, err := h(message.NewMessage("m1", []byte("x"))); err == nil {
				break // acked: dead-lettered
			}
		}
		if got := int(calls.Load()); got != maxAttempts {
			t.Errorf("batch func calls: got %d, want %d (max attempts)", got, maxAttempts)
		}
		if len(pub.msgs) != 1 {
			t.Fatalf("dead letters: got %d after %d deliveries, want 1", len(pub.msgs), deliveries)
		}
		md := pub.msgs[0].Metadata
		if md.Get(dlq.KeyErrorClass) != "exhausted" || md.Get(dlq.KeyAttempts) != "3" {
			t.Errorf("dead letter: class %q attempts %q, want exhausted and %d", md.Get(dlq.KeyErrorClass), md.Get(dlq.KeyAttempts), maxAttempts)
		}
	})
}
