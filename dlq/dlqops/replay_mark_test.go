package dlqops_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// stallingMarkStore fails MarkReplayed with a store error the first fails
// times, as a PostgreSQL store does for the seconds a stalled server makes
// each call outlast its timeout.
type stallingMarkStore struct {
	*dlqops.MemStore
	mu    sync.Mutex
	fails int
}

func (s *stallingMarkStore) MarkReplayed(ctx context.Context, id, owner, replayUUID string, at time.Time) error {
	s.mu.Lock()
	fail := s.fails > 0
	s.fails--
	s.mu.Unlock()
	if fail {
		time.Sleep(time.Second) // the store's timeout, spent
		return fmt.Errorf("%w: mark replayed: context deadline exceeded", dlqops.ErrStore)
	}
	return s.MemStore.MarkReplayed(ctx, id, owner, replayUUID, at)
}

// TestMarkOutlastsAShortStoreStall: a store that stalls for a few seconds
// right after a replay's publish. Before, the first failed mark stopped
// the run with the letter published but not marked: it stayed claimed,
// and once the lease ended the next run published it a second time. The
// mark is tried again within its bound (10 s), so a stall shorter than it
// costs no second publish and the run goes on.
func TestMarkOutlastsAShortStoreStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &stallingMarkStore{MemStore: dlqops.NewMemStore(), fails: 3}
		opsSeed(t, s, 3)
		p := &opsPublisher{}
		rep, err := opsReplayer(t, s, p).Replay(context.Background(), dlqops.ReplaySelection{})
		if err != nil || rep.Replayed != 3 {
			t.Fatalf("replay through a short store stall: %+v %v, want 3 replayed", rep, err)
		}
		if msgs, _, _ := p.sent(); len(msgs) != 3 {
			t.Errorf("published %d, want each of 3 once", len(msgs))
		}
		replayed, _ := s.List(context.Background(), dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusReplayed}})
		if len(replayed) != 3 {
			t.Errorf("%d letters marked replayed, want 3", len(replayed))
		}
	})
}

// TestMarkThatKeepsFailingSaysWhatFollows: a store down for longer than
// the mark's bound stops the run, and the error says the letter went out
// and will go out again when its claim's lease ends.
func TestMarkThatKeepsFailingSaysWhatFollows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &stallingMarkStore{MemStore: dlqops.NewMemStore(), fails: 1000}
		opsSeed(t, s, 1)
		_, err := opsReplayer(t, s, &opsPublisher{}).Replay(context.Background(), dlqops.ReplaySelection{})
		if !errors.Is(err, dlqops.ErrStore) {
			t.Fatalf("got %v, want the store's error", err)
		}
		if got := err.Error(); !strings.Contains(got, "lease") || !strings.Contains(got, "again") {
			t.Errorf("the error does not say the letter is replayed again after the lease: %s", got)
		}
	})
}

// landedMarkStore applies the first MarkReplayed and answers it with a
// store error, as a PostgreSQL store does when the UPDATE reached the
// server stalled behind the network and committed after the client's
// timeout.
type landedMarkStore struct {
	*dlqops.MemStore
	mu   sync.Mutex
	done bool
}

func (s *landedMarkStore) MarkReplayed(ctx context.Context, id, owner, replayUUID string, at time.Time) error {
	err := s.MemStore.MarkReplayed(ctx, id, owner, replayUUID, at)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && !s.done {
		s.done = true
		return fmt.Errorf("%w: mark replayed: context deadline exceeded", dlqops.ErrStore)
	}
	return err
}

// TestMarkThatLandedAfterItsTimeout: the first mark's answer was lost
// but the mark was applied; the next try finds the claim gone. Seen with
// PostgreSQL behind a stalled proxy: the run stopped saying the letter
// "stays claimed until its lease ends, then a replay sends it again",
// though the store had it replayed with this run's UUID. A claim lost to
// this replay's own mark is the mark done.
func TestMarkThatLandedAfterItsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &landedMarkStore{MemStore: dlqops.NewMemStore()}
		opsSeed(t, s, 2)
		p := &opsPublisher{}
		rep, err := opsReplayer(t, s, p).Replay(context.Background(), dlqops.ReplaySelection{})
		if err != nil || rep.Replayed != 2 {
			t.Fatalf("got %+v %v, want 2 replayed and no error", rep, err)
		}
		if msgs, _, _ := p.sent(); len(msgs) != 2 {
			t.Errorf("published %d, want 2", len(msgs))
		}
	})
}
