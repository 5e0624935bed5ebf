package dedup_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dedup/deduptest"
)

func TestMemStoreConformance(t *testing.T) {
	deduptest.Run(t, "mem", func(t *testing.T) dedup.Store {
		s, err := dedup.NewMemStore(100)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestMemStoreIsBounded: a full store forgets its oldest identity, and
// expired ones are swept as new ones come.
func TestMemStoreIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s, err := dedup.NewMemStore(3)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if err := s.Done(ctx, fmt.Sprint(i), 1, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.Len(); got != 3 {
			t.Errorf("len: got %d, want 3", got)
		}
		for key, want := range map[string]dedup.Status{"0": dedup.StatusClaimed, "3": dedup.StatusDone} {
			c, _ := s.Claim(ctx, key, 2, time.Minute)
			if c.Status != want {
				t.Errorf("key %s: got %v, want %v", key, c.Status, want)
			}
		}
		time.Sleep(2 * time.Hour) // everything expired
		for i := range 3 {
			if _, err := s.Claim(ctx, fmt.Sprint("new", i), 1, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.Len(); got != 3 {
			t.Errorf("len after expiry: got %d, want 3", got)
		}
		// Released claims leave stale ring slots that are swept.
		for i := range 10 {
			key := fmt.Sprint("r", i)
			_, _ = s.Claim(ctx, key, 5, time.Minute)
			_ = s.Release(ctx, key, 5)
		}
		if got := s.Len(); got > 3 {
			t.Errorf("len after releases: got %d, want <= 3", got)
		}
	})
}

// Every Levee store tells whether an identity is done (the replayer asks).
var _ dedup.DoneChecker = (*dedup.MemStore)(nil)
