package dlqops_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

// opsGateStore blocks the first Add until gate is closed and records batch
// sizes; failBatch makes the Add of that batch number (1-based) fail.
type opsGateStore struct {
	*dlqops.MemStore
	gate      chan struct{}
	failBatch int
	mu        sync.Mutex
	sizes     []int
}

func (s *opsGateStore) Add(ctx context.Context, recs ...dlqops.Record) (int, error) {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(recs))
	n := len(s.sizes)
	s.mu.Unlock()
	if n == 1 {
		<-s.gate
	}
	if n == s.failBatch {
		return 0, errors.Join(dlqops.ErrStore, errOpsDown)
	}
	return s.MemStore.Add(ctx, recs...)
}

func TestMonitorGroupCommit(t *testing.T) {
	tests := []struct {
		name      string
		maxRows   int
		failBatch int
		payload   int // bytes of each letter's payload
		wantSizes []int
		wantErrs  int
	}{
		{name: "queued calls share one insert", maxRows: 500, wantSizes: []int{1, 9}},
		{name: "bounded by max rows", maxRows: 4, wantSizes: []int{1, 4, 4, 1}},
		{name: "a failed batch fails only its callers", maxRows: 4, failBatch: 3, wantSizes: []int{1, 4, 4, 1}, wantErrs: 4},
		// Ten 10 MB letters in one INSERT outlast the store timeout, and so
		// would their redeliveries, batched the same way, forever.
		{name: "bounded by bytes", maxRows: 500, payload: dlqops.MonitorBatchBytes/4 + 1, wantSizes: []int{1, 3, 3, 3}},
		{name: "a letter over the bytes goes alone", maxRows: 500, payload: dlqops.MonitorBatchBytes, wantSizes: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{name: "off", maxRows: 1, wantSizes: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				s := &opsGateStore{MemStore: dlqops.NewMemStore(), gate: make(chan struct{}), failBatch: tt.failBatch}
				m, err := dlqops.NewMonitor(s, dlqops.WithMonitorBatchRows(tt.maxRows))
				if err != nil {
					t.Fatal(err)
				}
				errs := make(chan error, 10)
				handle := func(i int) {
					msg := opsDeadLetterMsg(fmt.Sprintf("u%d", i), "orders", opsFP, 0, opsNow)
					msg.Payload = make([]byte, tt.payload)
					errs <- m.Handle(msg)
				}
				go handle(0)
				synctest.Wait() // the leader is inside the first Add
				for i := 1; i < 10; i++ {
					go handle(i)
				}
				synctest.Wait() // nine callers queued (or, with group commit off, waiting on the store)
				close(s.gate)
				failed := 0
				for range 10 {
					if err := <-errs; err != nil {
						if !errors.Is(err, dlqops.ErrStore) {
							t.Errorf("error %v does not wrap ErrStore", err)
						}
						failed++
					}
				}
				if failed != tt.wantErrs {
					t.Errorf("%d calls failed want %d", failed, tt.wantErrs)
				}
				if s.Len() != 10-tt.wantErrs {
					t.Errorf("stored %d want %d", s.Len(), 10-tt.wantErrs)
				}
				if !slices.Equal(s.sizes, tt.wantSizes) {
					t.Errorf("batch sizes %v want %v", s.sizes, tt.wantSizes)
				}
			})
		})
	}
}
