//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
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
