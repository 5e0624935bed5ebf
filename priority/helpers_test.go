package priority_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/levee-dev/levee/priority"
)

// recorder collects the order in which waiters got a slot and their
// errors.
type recorder struct {
	mu     sync.Mutex
	order  []string
	errs   map[string]error
	waited map[string]time.Duration
}

func newRecorder() *recorder {
	return &recorder{errs: map[string]error{}, waited: map[string]time.Duration{}}
}

func (r *recorder) granted(name string, waited time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order = append(r.order, name)
	r.waited[name] = waited
}

func (r *recorder) failed(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[name] = err
}

func (r *recorder) Order() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

func (r *recorder) Err(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[name]
}

func (r *recorder) Waited(name string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waited[name]
}

// wait starts a goroutine that acquires a slot at priority p, records it,
// holds it for hold (fake time) and releases it; then it waits until the
// goroutine is blocked, so arrival order is the call order.
func (r *recorder) wait(ctx context.Context, s *priority.Scheduler, name string, p int, hold time.Duration) {
	go func() {
		start := time.Now()
		if err := s.Acquire(ctx, p); err != nil {
			r.failed(name, err)
			return
		}
		r.granted(name, time.Since(start))
		if hold > 0 {
			time.Sleep(hold)
		}
		s.Release()
	}()
	synctest.Wait()
}

func newScheduler(t *testing.T, opts ...priority.Option) *priority.Scheduler {
	t.Helper()
	s, err := priority.NewScheduler(opts...)
	if err != nil {
		t.Fatalf("NewScheduler: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// hold takes every slot of s (which must be free).
func hold(t *testing.T, s *priority.Scheduler, n int) {
	t.Helper()
	for range n {
		if err := s.Acquire(context.Background(), 0); err != nil {
			t.Fatalf("Acquire: %v", err)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isReject(err, sentinel error) bool {
	var re *priority.RejectError
	return errors.Is(err, sentinel) && errors.As(err, &re)
}
