package batch_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/hold"
	"github.com/levee-dev/levee/internal/testkit"
)

// held returns a message whose delivery's hold (package hold, recorded by
// a layer further out: the breaker, the priority queue, the rate limit or
// the dlq's retry) ends after left.
func held(uuid string, left time.Duration) *message.Message {
	m := message.NewMessage(uuid, nil)
	m.SetContext(context.Background())
	hold.Record(m, time.Now().Add(left))
	return m
}

// A message whose delivery's hold ends before its batch's max_wait starts
// the batch at that deadline: its wait elsewhere in the stack and in the
// batch together stay within the max hold. Before, the batch lingered its
// whole max_wait, past the delivery's hold (and the transport's ack
// deadline the hold protects).
func TestBatchStartsByTheDeliveryHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		b := mustNew(t, s.fn, batch.WithMaxWait(time.Second), batch.WithMaxHold(2*time.Second))
		defer b.Close()
		d := newDelivery()
		start := time.Now()
		d.send(b, message.NewMessage("a", nil), held("b", 100*time.Millisecond), message.NewMessage("c", nil))
		testkit.Advance(100 * time.Millisecond)
		if got, want := s.batches(), [][]string{{"a", "b", "c"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("batches %v at %v, want %v at b's hold (100ms), not max_wait (1s)", got, time.Since(start), want)
		}
		d.wantDone(t, nil, "a", "b", "c")
	})
}

// A queued batch (no free slot) that cannot start by a member's delivery
// hold fails as a batch that outlived its own max_hold does: a deferral
// (*HoldError), so the transport redelivers before its ack deadline.
func TestQueuedBatchDefersAtTheDeliveryHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		s := &sink{gate: gate}
		b := mustNew(t, s.fn, batch.WithMaxSize(1), batch.WithMaxInFlight(1), batch.WithMaxWait(time.Second))
		defer b.Close()
		d := newDelivery()
		d.send(b, message.NewMessage("running", nil), held("queued", 300*time.Millisecond))
		testkit.Advance(300 * time.Millisecond)
		d.wantDone(t, batch.ErrMaxHold, "queued")
		close(gate)
		synctest.Wait()
		d.wantDone(t, nil, "running")
	})
}
