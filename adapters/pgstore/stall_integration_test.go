//go:build integration

package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestStalledDatabaseGivesErrorsNotHangs stalls the database for the store
// (another session holds ACCESS EXCLUSIVE on the letters table in an open
// transaction): concurrent Monitor.Handle calls return a store error within
// the store timeout, the server stops waiting too (lock_timeout), Close
// completes while the lock is still held, and once the lock is gone a new
// store records the letters.
func TestStalledDatabaseGivesErrorsNotHangs(t *testing.T) {
	const timeout = time.Second
	ctx := context.Background()
	schema := newSchema(t)
	app := "levee_stall_" + schema[len("levee_test_"):]
	url := pgURL() + "&application_name=" + app
	s, err := pgstore.Open(ctx, url, pgstore.WithSchema(schema), pgstore.WithTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})

	locker, err := pgx.Connect(ctx, pgURL())
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE `+schema+`.dead_letters IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	for _, rows := range []int{1, dlqops.DefaultMonitorBatchRows} {
		mon, err := dlqops.NewMonitor(s, dlqops.WithMonitorBatchRows(rows), dlqops.WithStoreTimeout(timeout))
		if err != nil {
			t.Fatal(err)
		}
		const n = 6
		type result struct {
			err     error
			elapsed time.Duration
		}
		results := make(chan result, n)
		for i := range n {
			go func() {
				msg := message.NewMessage(fmt.Sprintf("stall-%d-%d", rows, i), []byte("p"))
				msg.Metadata.Set(dlq.KeyOriginalTopic, "orders")
				start := time.Now()
				err := mon.Handle(msg)
				results <- result{err, time.Since(start)}
			}()
		}
		for range n {
			r := <-results
			var mse *dlqops.MonitorStoreError
			if !errors.As(r.err, &mse) || !errors.Is(r.err, dlqops.ErrStore) {
				t.Errorf("batch rows %d: got %v want a *MonitorStoreError wrapping dlqops.ErrStore", rows, r.err)
			}
			// the deadline plus scheduling slack on a shared 2-core machine
			if r.elapsed > timeout+time.Second {
				t.Errorf("batch rows %d: Handle took %s with a %s store timeout", rows, r.elapsed, timeout)
			}
		}
	}

	// the server gave up waiting for the lock as well
	deadline := time.Now().Add(5 * time.Second)
	for {
		var waiting int
		if err := locker.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
			app).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d store sessions still wait for the lock on the server", waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// a direct call has the same deadline
	start := time.Now()
	if _, err := s.List(ctx, dlqops.Filter{}); !errors.Is(err, dlqops.ErrStore) {
		t.Errorf("List during the stall: got %v want dlqops.ErrStore", err)
	}
	if d := time.Since(start); d > timeout+time.Second {
		t.Errorf("List took %s with a %s store timeout", d, timeout)
	}

	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		closed = true
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs while the database is stalled")
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, schema)
	mon, err := dlqops.NewMonitor(s2)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("after-stall", []byte("p"))
	id := dlqops.NewRecord(msg, "", time.Now()).ID
	if err := mon.Handle(msg); err != nil {
		t.Fatalf("after the stall: %v", err)
	}
	if _, err := s2.Get(ctx, id); err != nil {
		t.Errorf("after the stall: %v", err)
	}
}
