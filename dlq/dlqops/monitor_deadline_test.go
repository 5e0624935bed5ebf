package dlqops_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// stallStore is a store whose Add waits, while stalled, until its context
// ends (a database holding a lock: the client's deadline is the only way
// out), and then fails as the real stores do.
type stallStore struct {
	*dlqops.MemStore
	mu      sync.Mutex
	stalled bool // guarded by mu
	adds    int  // guarded by mu
}

func (s *stallStore) setStalled(v bool) {
	s.mu.Lock()
	s.stalled = v
	s.mu.Unlock()
}

func (s *stallStore) Add(ctx context.Context, letters ...dlqops.Record) (int, error) {
	s.mu.Lock()
	s.adds++
	stalled := s.stalled
	s.mu.Unlock()
	if stalled {
		<-ctx.Done()
		return 0, fmt.Errorf("%w: stalled: %w", dlqops.ErrStore, ctx.Err())
	}
	return s.MemStore.Add(ctx, letters...)
}

func monitorStoreErrors(t *testing.T, rd *sdkmetric.ManualReader) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "levee.dlq.monitor.store_errors" {
				var n int64
				for _, dp := range sum.DataPoints {
					n += dp.Value
				}
				return n
			}
		}
	}
	return 0
}

// A stalled store makes every Handle return a store error at its deadline
// (the store timeout), never later, with group commit on and off; each
// failure is counted; once the store answers again, Handle stores.
func TestMonitorStalledStoreReturnsAtDeadline(t *testing.T) {
	const timeout = 2 * time.Second
	for _, rows := range []int{1, dlqops.DefaultMonitorBatchRows} {
		t.Run(fmt.Sprintf("batch rows %d", rows), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				s := &stallStore{MemStore: dlqops.NewMemStore(), stalled: true}
				rd := sdkmetric.NewManualReader()
				m, err := dlqops.NewMonitor(s, dlqops.WithMonitorBatchRows(rows), dlqops.WithStoreTimeout(timeout),
					dlqops.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))))
				if err != nil {
					t.Fatal(err)
				}
				type result struct {
					err     error
					elapsed time.Duration
				}
				results := make(chan result, 8)
				handle := func(i int) {
					start := time.Now()
					err := m.Handle(opsDeadLetterMsg(fmt.Sprintf("s%d", i), "orders", opsFP, 0, opsNow))
					results <- result{err, time.Since(start)}
				}
				go handle(0)
				synctest.Wait() // the first call is in the stalled Add
				time.Sleep(timeout / 2)
				for i := 1; i < 8; i++ {
					go handle(i) // queued behind it, or in their own stalled Add
				}
				for range 8 {
					r := <-results
					if !errors.Is(r.err, dlqops.ErrStore) {
						t.Errorf("got %v want an error wrapping ErrStore", r.err)
					}
					if r.elapsed > timeout {
						t.Errorf("Handle returned after %s, past the %s deadline", r.elapsed, timeout)
					}
				}
				if got := monitorStoreErrors(t, rd); got != 8 {
					t.Errorf("store errors counted %d want 8", got)
				}
				s.setStalled(false)
				if err := m.Handle(opsDeadLetterMsg("after", "orders", opsFP, 0, opsNow)); err != nil {
					t.Fatalf("after the stall: %v", err)
				}
				if s.Len() != 1 {
					t.Errorf("stored %d want 1", s.Len())
				}
			})
		})
	}
}

// A queued Handle whose message context ends returns at once, even when it
// had just been handed the lead of the next batch: the lead passes on and
// the callers behind it are stored.
func TestMonitorGroupCommitWaiterCancelled(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := &opsGateStore{MemStore: dlqops.NewMemStore(), gate: make(chan struct{})}
		m, err := dlqops.NewMonitor(s, dlqops.WithStoreTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 3)
		go func() { errs <- m.Handle(opsDeadLetterMsg("lead", "orders", opsFP, 0, opsNow)) }()
		synctest.Wait() // the leader is in the gated Add
		ctx, cancel := context.WithCancel(context.Background())
		cancelled := opsDeadLetterMsg("cancelled", "orders", opsFP, 0, opsNow)
		cancelled.SetContext(ctx)
		go func() { errs <- m.Handle(cancelled) }()
		synctest.Wait()
		go func() { errs <- m.Handle(opsDeadLetterMsg("behind", "orders", opsFP, 0, opsNow)) }()
		synctest.Wait() // two queued
		cancel()
		if err := <-errs; !errors.Is(err, dlqops.ErrStore) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: got %v want ErrStore and context.Canceled", err)
		}
		close(s.gate)
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("got %v", err)
			}
		}
		idOf := func(m *message.Message) string {
			return dlqops.NewRecord(m, m.Metadata.Get(dlq.KeyDLQTopic), opsNow).ID
		}
		if _, err := s.Get(context.Background(), idOf(opsDeadLetterMsg("lead", "orders", opsFP, 0, opsNow))); err != nil {
			t.Errorf("the lead letter is not where its ID says: %v", err)
		}
		if _, err := s.Get(context.Background(), idOf(cancelled)); !errors.Is(err, dlqops.ErrNotFound) {
			t.Errorf("the cancelled letter was stored (it was Nacked): %v", err)
		}
		if s.Len() != 2 {
			t.Errorf("stored %d want 2 (lead and behind)", s.Len())
		}
	})
}

// A waiter cancelled just as the batch before it ends either leads the next
// batch (its letter stored, nil) or passes the lead on (Nacked, not
// stored); the caller behind it is stored either way.
func TestMonitorGroupCommitCancelRacesLead(t *testing.T) {
	for i := range 20 {
		testkit.Synctest(t, func(t *testing.T) {
			s := &opsGateStore{MemStore: dlqops.NewMemStore(), gate: make(chan struct{})}
			m, err := dlqops.NewMonitor(s)
			if err != nil {
				t.Fatal(err)
			}
			lead, racer, behind := make(chan error, 1), make(chan error, 1), make(chan error, 1)
			go func() { lead <- m.Handle(opsDeadLetterMsg("lead", "orders", opsFP, 0, opsNow)) }()
			synctest.Wait()
			ctx, cancel := context.WithCancel(context.Background())
			msg := opsDeadLetterMsg("racer", "orders", opsFP, 0, opsNow)
			msg.SetContext(ctx)
			go func() { racer <- m.Handle(msg) }()
			synctest.Wait()
			go func() { behind <- m.Handle(opsDeadLetterMsg("behind", "orders", opsFP, 0, opsNow)) }()
			synctest.Wait()
			close(s.gate)
			cancel()
			if err := <-lead; err != nil {
				t.Errorf("run %d: lead: %v", i, err)
			}
			if err := <-behind; err != nil {
				t.Errorf("run %d: behind: %v", i, err)
			}
			rerr := <-racer
			// Letter IDs hash the consumer and content: find the racer by UUID.
			all, lerr := s.List(context.Background(), dlqops.Filter{})
			if lerr != nil {
				t.Fatal(lerr)
			}
			stored := false
			for _, r := range all {
				stored = stored || r.UUID == "racer"
			}
			if (rerr == nil) != stored {
				t.Errorf("run %d: racer returned %v but stored: %v", i, rerr, stored)
			}
		})
	}
}

func TestNewMonitorInvalidStoreTimeout(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := dlqops.NewMonitor(dlqops.NewMemStore(), dlqops.WithStoreTimeout(d)); !errors.Is(err, dlqops.ErrInvalidConfig) {
			t.Errorf("store timeout %s: got %v want ErrInvalidConfig", d, err)
		}
	}
}
