package dedup_test

import (
	"context"
	"fmt"
	"math"
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

// TestMemStoreGrowsToMax: the ring is allocated as identities arrive, so
// a huge max (max_keys from a file) costs nothing up front (it panicked in
// makeslice, or allocated 8 bytes a key before the first message), and a
// ring grown past its first size keeps insertion order: the oldest is
// forgotten first once max is reached, and released slots are swept.
func TestMemStoreGrowsToMax(t *testing.T) {
	ctx := context.Background()
	if s, err := dedup.NewMemStore(math.MaxInt); err != nil || s.Len() != 0 {
		t.Fatalf("NewMemStore(MaxInt): %v", err)
	}
	const max = 3000
	released := func(i int) bool { return i < 100 || i%7 == 3 }
	s, err := dedup.NewMemStore(max)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * max {
		key := fmt.Sprint(i)
		if released(i) { // a stale slot; the first ones move the ring's head
			_, _ = s.Claim(ctx, key, 1, time.Minute)
			_ = s.Release(ctx, key, 1)
			continue
		}
		if err := s.Done(ctx, key, 1, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Len(); got > max {
		t.Errorf("len: got %d, want at most %d", got, max)
	}
	// Forgotten oldest first: from the newest back, once a done key is
	// missing no older one is kept; and max of them are (the released
	// claims' stale slots take no identity's room).
	kept, gap := 0, false
	for i := 2*max - 1; i >= 0; i-- {
		if released(i) {
			continue
		}
		done, _ := s.IsDone(ctx, fmt.Sprint(i))
		switch {
		case done && gap:
			t.Fatalf("key %d kept after a newer one was forgotten", i)
		case done:
			kept++
		default:
			gap = true
		}
	}
	if kept != max {
		t.Errorf("kept %d done keys, want %d", kept, max)
	}
}

// Every Levee store tells whether an identity is done (the replayer asks).
var _ dedup.DoneChecker = (*dedup.MemStore)(nil)

// TestMemStoreReleasesTakeNoRoom: released claims (a failure's, and each
// deferral's from a layer inside: a breaker open, a rate limit) are no
// identities, and a store holding fewer than max identities forgets none.
// Their ring slots counted against max: five done marks and ten released
// claims in a store of ten forgot all five, so under a breaker open for a
// minute every done mark of the memory store was flushed and the
// duplicates after it ran again.
func TestMemStoreReleasesTakeNoRoom(t *testing.T) {
	ctx := context.Background()
	const max = 10
	s, err := dedup.NewMemStore(max)
	if err != nil {
		t.Fatal(err)
	}
	for i := range max / 2 {
		if err := s.Done(ctx, fmt.Sprint("done-", i), 1, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 * max {
		key := fmt.Sprint("deferred-", i%(max/2))
		_, _ = s.Claim(ctx, key, uint64(i), time.Minute)
		_ = s.Release(ctx, key, uint64(i))
	}
	for i := range max / 2 {
		if done, _ := s.IsDone(ctx, fmt.Sprint("done-", i)); !done {
			t.Errorf("done-%d forgotten by a store of %d holding %d identities", i, max, s.Len())
		}
	}
	// Full of live identities, it still forgets the oldest first.
	for i := range max {
		_ = s.Done(ctx, fmt.Sprint("new-", i), 1, time.Hour)
	}
	if got := s.Len(); got != max {
		t.Errorf("len: got %d, want %d", got, max)
	}
	if done, _ := s.IsDone(ctx, "done-0"); done {
		t.Error("the oldest identity kept in a full store")
	}
	if done, _ := s.IsDone(ctx, fmt.Sprint("new-", max-1)); !done {
		t.Error("the newest identity forgotten")
	}
}
