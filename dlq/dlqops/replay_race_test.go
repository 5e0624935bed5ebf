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

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestConcurrentReplayersReplayOncePerRun runs the whole loop in fake time:
// a handler that keeps failing, its dlq Retrier, a Monitor, and two
// replayers of the same group running at once. Each replayed message fails
// again and comes back as a new letter while both runs go on. Between them
// the two runs replay each letter once: neither takes up a letter produced
// by a replay published after it started, whoever published it (before,
// each run took up the other's replays and they looped until max replays).
// A later run replays those letters, once each.
func TestConcurrentReplayersReplayOncePerRun(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		h := testkit.New(t)
		dr, err := dlq.New(h.PubSub, dlq.WithMaxAttempts(1))
		if err != nil {
			t.Fatal(err)
		}
		s := dlqops.NewMemStore()
		mon, err := dlqops.NewMonitor(s)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		replayCounts := map[string]int{} // replay count seen by the handler -> deliveries
		h.Handle("orders-handler", "orders", func(msg *message.Message) error {
			mu.Lock()
			replayCounts[msg.Metadata[dlq.KeyReplayCount]]++
			mu.Unlock()
			return dlq.Permanent(errors.New("inventory service rejected order"))
		}, dr.Middleware)
		h.Handle("dlq-monitor", "orders.dlq", mon.Handle)
		h.Start()
		const n = 6
		h.PublishN("orders", n, nil)
		synctest.Wait()
		if got := s.Len(); got != n {
			t.Fatalf("stored %d letters want %d", got, n)
		}

		ctx := context.Background()
		var wg sync.WaitGroup
		var reps [2]dlqops.ReplayReport
		for i := range reps {
			r, err := dlqops.NewReplayer(s, h.PubSub, dlqops.WithReplayRate(20), dlqops.WithReplayBatch(1),
				dlqops.WithMaxReplays(10), dlqops.WithReplayOwner(fmt.Sprintf("replayer-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
				if err != nil {
					t.Error(err)
				}
				reps[i] = rep
			})
		}
		wg.Wait()
		synctest.Wait()
		if reps[0].Replayed == 0 || reps[1].Replayed == 0 {
			t.Errorf("replayed %d and %d: want both runs to share the work", reps[0].Replayed, reps[1].Replayed)
		}
		if got := reps[0].Replayed + reps[1].Replayed; got != n {
			t.Errorf("the two runs replayed %d letters between them, want %d (each once)", got, n)
		}
		mu.Lock()
		if replayCounts["1"] != n || len(replayCounts) != 2 {
			t.Errorf("handler saw replay counts %v, want %d originals and %d first replays only", replayCounts, n, n)
		}
		mu.Unlock()
		fresh, err := s.List(ctx, dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}})
		if err != nil || len(fresh) != n {
			t.Fatalf("new letters after the runs: %d %v, want the %d failures of the replays", len(fresh), err, n)
		}
		for _, dl := range fresh {
			if dl.ReplayCount != 1 {
				t.Errorf("letter %s has replay count %d want 1", dl.ID, dl.ReplayCount)
			}
		}

		// a later run replays the failures of the replays, once each (a
		// minute later: a run leaves replays published at or after the
		// instant it starts, and fake time stands still until then)
		testkit.Advance(time.Minute)
		r, err := dlqops.NewReplayer(s, h.PubSub, dlqops.WithReplayRate(20), dlqops.WithMaxReplays(10))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
		if err != nil || rep.Replayed != n {
			t.Errorf("later run: %+v %v, want %d replayed", rep, err, n)
		}
		synctest.Wait()
	})
}

// TestReplayLeavesReplaysPublishedDuringTheRun pins the rule on each kind
// of letter: a run started at start leaves the dead letter of a replay
// published at or after start (by any replayer), and with Force a letter
// marked replayed at or after start; garbage lineage does not block a
// replay.
func TestReplayLeavesReplaysPublishedDuringTheRun(t *testing.T) {
	start := opsNow.Add(time.Hour)
	lineage := func(replayedAt string, withOf bool) func(m *message.Message) {
		return func(m *message.Message) {
			m.Metadata[dlq.KeyReplayCount] = "1"
			m.Metadata[dlq.KeyReplayedAt] = replayedAt
			if withOf {
				m.Metadata[dlq.KeyReplayOf] = "dl-00000000000000000000000000000000"
			}
		}
	}
	tests := []struct {
		name     string
		mutate   func(m *message.Message)
		replayed time.Time // marked replayed at this time (Force run) when set
		wantLeft bool
	}{
		{name: "not a replay", mutate: func(*message.Message) {}},
		{name: "replay published before the run", mutate: lineage(dlq.FormatTime(start.Add(-time.Second)), true)},
		{name: "replay published as the run starts", mutate: lineage(dlq.FormatTime(start), true), wantLeft: true},
		{name: "replay published by another replayer during the run", mutate: lineage(dlq.FormatTime(start.Add(time.Minute)), true), wantLeft: true},
		{name: "replay time beyond the lease is garbage", mutate: lineage(dlq.FormatTime(start.Add(365*24*time.Hour)), true)},
		{name: "replay time without replay of", mutate: lineage(dlq.FormatTime(start.Add(time.Minute)), false)},
		{name: "garbage replay time", mutate: lineage("soon", true)},
		{name: "forced: replayed before the run", mutate: func(*message.Message) {}, replayed: start.Add(-time.Minute)},
		{name: "forced: replayed by another run during this one", mutate: func(*message.Message) {}, replayed: start, wantLeft: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := dlqops.NewMemStore()
			m := opsDeadLetterMsg("u1", "orders", opsFP, 0, opsNow)
			tt.mutate(m)
			if err := opsMonitor(t, s).Record(ctx, "orders.dlq", m); err != nil {
				t.Fatal(err)
			}
			id := dlqops.NewRecord(m, "orders.dlq", opsNow).ID
			force := !tt.replayed.IsZero()
			if force {
				if _, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: "other", Now: opsNow, Lease: time.Minute, Limit: 1}); err != nil {
					t.Fatal(err)
				}
				if err := s.MarkReplayed(ctx, id, "other", "r-1", tt.replayed); err != nil {
					t.Fatal(err)
				}
			}
			p := &opsPublisher{}
			r := opsReplayer(t, s, p, dlqops.WithClock(func() time.Time { return start }))
			rep, err := r.Replay(ctx, dlqops.ReplaySelection{Force: force})
			if err != nil {
				t.Fatal(err)
			}
			msgs, _, _ := p.sent()
			dl, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantLeft {
				if len(msgs) != 0 || rep.Processed != 0 || !strings.Contains(dl.Reason, "a later") {
					t.Errorf("published %d, report %+v, reason %q: want the letter left for a later run", len(msgs), rep, dl.Reason)
				}
				return
			}
			if len(msgs) != 1 || rep.Replayed != 1 || dl.Status != dlqops.StatusReplayed {
				t.Errorf("published %d, report %+v, status %s: want it replayed", len(msgs), rep, dl.Status)
			}
		})
	}
}

// TestSlowReplayKeepsItsClaims runs two replayers of one group at a
// velocity limit (one a minute, as `levee dlq replay --rate 1/min` sets)
// under which a whole claim batch takes longer than the claim's lease. The
// first run's later letters must not outlive their claims while they wait
// for a token: otherwise a second operator's run claims them (their lease
// ended) and both runs publish them (before, letters 7 to 10 went out
// twice and the first run stopped with a lost claim).
func TestSlowReplayKeepsItsClaims(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		ctx := context.Background()
		s := dlqops.NewMemStore()
		const n = 10
		opsSeed(t, s, n)
		p := &opsPublisher{}
		newReplayer := func(owner string) *dlqops.Replayer {
			r, err := dlqops.NewReplayer(s, p, dlqops.WithReplayRate(1.0/60), dlqops.WithReplayOwner(owner))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		var wg sync.WaitGroup
		var errs [2]error
		var reps [2]dlqops.ReplayReport
		wg.Go(func() { reps[0], errs[0] = newReplayer("first").Replay(ctx, dlqops.ReplaySelection{}) })
		testkit.Advance(6*time.Minute + time.Second) // past the first run's lease: the second operator starts
		wg.Go(func() { reps[1], errs[1] = newReplayer("second").Replay(ctx, dlqops.ReplaySelection{}) })
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("run %d: %v", i, err)
			}
		}
		msgs, _, _ := p.sent()
		published := map[string]int{}
		for _, m := range msgs {
			published[m.Metadata[dlq.KeyReplayOf]]++
		}
		for id, k := range published {
			if k != 1 {
				t.Errorf("letter %s published %d times, want once", id, k)
			}
		}
		if len(published) != n || reps[0].Replayed+reps[1].Replayed != n {
			t.Errorf("published %d letters (reports %d and %d replayed), want each of %d once",
				len(published), reps[0].Replayed, reps[1].Replayed, n)
		}
	})
}

// cancelingPublisher publishes like opsPublisher and, at its n-th publish,
// cancels the run's context before it returns: the operator's Ctrl-C (or
// a console request whose browser went away) arriving while the broker
// takes the message.
type cancelingPublisher struct {
	opsPublisher
	n      int
	cancel context.CancelFunc
}

func (p *cancelingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.n--
	if p.n == 0 {
		p.cancel()
	}
	return p.opsPublisher.Publish(topic, msgs...)
}

// TestInterruptedReplayMarksWhatItPublished interrupts a run while its
// second publish is under way and the broker takes the message: the run
// stops, and the letter it published is marked replayed all the same, so
// a second run (at once, or after the lease) does not send it again
// (before, the mark ran on the canceled context and failed, the letter
// stayed claimed and went out twice once the lease ended).
func TestInterruptedReplayMarksWhatItPublished(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		const n = 4
		opsSeed(t, s, n)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := &cancelingPublisher{n: 2, cancel: cancel}
		r, err := dlqops.NewReplayer(s, p, dlqops.WithReplayRate(0), dlqops.WithReplayOwner("interrupted"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Replay(ctx, dlqops.ReplaySelection{}); !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted run: %v, want context.Canceled", err)
		}
		testkit.Advance(dlqops.DefaultReplayLease + time.Minute)
		if _, err := opsReplayer(t, s, &p.opsPublisher, dlqops.WithReplayOwner("next")).Replay(context.Background(), dlqops.ReplaySelection{}); err != nil {
			t.Fatal(err)
		}
		msgs, _, _ := p.sent()
		published := map[string]int{}
		for _, m := range msgs {
			published[m.Metadata[dlq.KeyReplayOf]]++
		}
		letters, err := s.List(context.Background(), dlqops.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, dl := range letters {
			if published[dl.ID] != 1 || dl.Status != dlqops.StatusReplayed {
				t.Errorf("letter %s: published %d times, status %s; want once, replayed", dl.ID, published[dl.ID], dl.Status)
			}
		}
	})
}

// TestInterruptedDoneCheckGivesTheLetterBack interrupts a run while it
// asks the consumers' dedup store about a letter: the letter is not held
// with the interruption as its reason, and its claim is given back, so
// another run replays it at once (before, the release ran on the canceled
// context and failed: the letter stayed claimed until the lease ended,
// with no reason recorded).
func TestInterruptedDoneCheckGivesTheLetterBack(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		opsSeed(t, s, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := &opsPublisher{}
		r := opsReplayer(t, s, p, dlqops.WithReplayOwner("interrupted"),
			dlqops.WithReplayDoneCheck(func(ctx context.Context, _, _ string) (bool, error) {
				cancel() // Ctrl-C while the dedup store answers
				return false, ctx.Err()
			}))
		if _, err := r.Replay(ctx, dlqops.ReplaySelection{}); !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted run: %v, want context.Canceled", err)
		}
		rep, err := opsReplayer(t, s, p, dlqops.WithReplayOwner("next")).Replay(context.Background(), dlqops.ReplaySelection{})
		if err != nil || rep.Replayed != 1 {
			t.Errorf("the next run at once: %+v %v, want the letter replayed", rep, err)
		}
		dl, err := s.Get(context.Background(), opsID("u000"))
		if err != nil || dl.Status != dlqops.StatusReplayed || dl.Reason != "" {
			t.Errorf("letter after both runs: %+v %v", dl, err)
		}
	})
}
