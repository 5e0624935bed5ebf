package batch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
)

// call is one invocation of the batch func.
type call struct {
	uuids []string
	ctx   context.Context
}

// sink is a batch func that records its calls and returns what ret says.
type sink struct {
	mu    sync.Mutex
	calls []call
	ret   func(msgs []*message.Message) error // nil: success
	gate  chan struct{}                       // non-nil: each call waits for a receive... close
}

func (s *sink) fn(ctx context.Context, msgs []*message.Message) error {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.UUID
	}
	s.mu.Lock()
	s.calls = append(s.calls, call{uuids: ids, ctx: ctx})
	gate, ret := s.gate, s.ret
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if ret != nil {
		return ret(msgs)
	}
	return nil
}

func (s *sink) batches() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.uuids
	}
	return out
}

func (s *sink) call(i int) call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[i]
}

// delivery runs Handler calls in goroutines and collects their results.
type delivery struct {
	mu      sync.Mutex
	results map[string]error
	done    map[string]bool
	wg      sync.WaitGroup
}

func newDelivery() *delivery {
	return &delivery{results: map[string]error{}, done: map[string]bool{}}
}

// send delivers each message in its own goroutine, one after the other:
// each has joined (is blocked) before the next starts, so joining order is
// the argument order. Call it inside a synctest bubble.
func (d *delivery) send(b *batch.Batcher, msgs ...*message.Message) {
	for _, m := range msgs {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			_, err := b.Handler(m)
			d.mu.Lock()
			d.results[m.UUID] = err
			d.done[m.UUID] = true
			d.mu.Unlock()
		}()
		synctest.Wait()
	}
}

// result returns the result of uuid and whether it has returned.
func (d *delivery) result(uuid string) (error, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.results[uuid], d.done[uuid]
}

// wantDone fails unless every uuid returned, with an error matching want
// (nil: success).
func (d *delivery) wantDone(t *testing.T, want error, uuids ...string) {
	t.Helper()
	for _, id := range uuids {
		err, ok := d.result(id)
		if !ok {
			t.Errorf("%s: still waiting, want a result", id)
			continue
		}
		if want == nil && err != nil {
			t.Errorf("%s: got error %v, want success", id, err)
		}
		if want != nil && !errorsIs(err, want) {
			t.Errorf("%s: got %v, want an error matching %v", id, err, want)
		}
	}
}

func (d *delivery) wantPending(t *testing.T, uuids ...string) {
	t.Helper()
	for _, id := range uuids {
		if err, ok := d.result(id); ok {
			t.Errorf("%s: returned %v, want still waiting", id, err)
		}
	}
}

func msgs(prefix string, n int, payload string) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		out[i] = message.NewMessage(fmt.Sprintf("%s%d", prefix, i), []byte(payload))
	}
	return out
}

func ids(ms []*message.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UUID
	}
	return out
}

func mustNew(t *testing.T, fn batch.Func, opts ...batch.Option) *batch.Batcher {
	t.Helper()
	b, err := batch.New(fn, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
