//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

func TestAttemptsConformance(t *testing.T) {
	dlqtest.RunAttempts(t, func(t *testing.T) dlq.AttemptStore { return openStore(t, newSchema(t)).Attempts() })
}

// Purge deletes the expired records only.
func TestAttemptsPurge(t *testing.T) {
	ctx := context.Background()
	a := openStore(t, newSchema(t)).Attempts()
	now := time.Now()
	for i := range 5 {
		ttl := time.Hour
		if i < 3 {
			ttl = time.Minute
		}
		if _, _, err := a.Fail(ctx, "h", fmt.Sprint(i), now, ttl); err != nil {
			t.Fatal(err)
		}
	}
	n, err := a.Purge(ctx, now.Add(2*time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("purge: %d %v want 3", n, err)
	}
	if got, _, err := a.Fail(ctx, "h", "4", now.Add(3*time.Minute), time.Hour); err != nil || got != 2 {
		t.Errorf("a live record after purge: got %d %v want 2", got, err)
	}
}

// TestExpiredAttemptsDoNotPileUp: Fail purges expired records as it goes.
// With every failing message a new UUID (each failing once, then
// succeeding), the purges must delete as many expired records as the
// calls add: before the fix they deleted at most 1000 per 1024 calls, so
// 24 expired rows per 1024 failures stayed for ever (192 after 8,192
// failures, 576 after 24,576), and the table grew without bound.
func TestExpiredAttemptsDoNotPileUp(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newSchema(t))
	a := s.Attempts()
	base := time.Now()
	var calls atomic.Int64
	fail := func(n int) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					i := calls.Add(1)
					if i > int64(n) {
						return
					}
					// each record expires before the next call's now
					if _, _, err := a.Fail(ctx, "h", fmt.Sprint("m-", i), base.Add(time.Duration(i)*time.Millisecond), time.Microsecond); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	rows := func() int {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+s.Schema()+`.attempts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const cycle = 1024
	fail(8 * cycle)
	mid := rows()
	calls.Store(8 * cycle)
	fail(24 * cycle)
	if end := rows(); end > mid+cycle/4 {
		t.Errorf("expired records: %d after %d failures, %d after %d; want no growth (the purge does not keep up)", mid, 8*cycle, end, 24*cycle)
	}
}
