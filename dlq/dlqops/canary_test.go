package dlqops_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// flaky dead-letters the replays whose payload fail names, after delay,
// through a Monitor on the same store; the others are processed.
type flaky struct {
	mon   *dlqops.Monitor
	fail  func(payload string) bool
	delay time.Duration
	wg    sync.WaitGroup
	mu    sync.Mutex
	got   []string
}

func (p *flaky) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		p.mu.Lock()
		p.got = append(p.got, string(m.Payload))
		p.mu.Unlock()
		if !p.fail(string(m.Payload)) {
			continue
		}
		p.wg.Go(func() {
			time.Sleep(p.delay)
			dl := message.NewMessage(m.UUID, m.Payload)
			dl.Metadata = maps.Clone(m.Metadata)
			dl.Metadata[dlq.KeyOriginalTopic] = topic
			dl.Metadata[dlq.KeyError] = "still failing"
			dl.Metadata[dlq.KeyFingerprint] = "ffffffffffffffff"
			dl.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(time.Now())
			_ = p.mon.Record(context.Background(), topic+".dlq", dl)
		})
	}
	return nil
}

func (p *flaky) Close() error { return nil }

func seedCanary(t *testing.T, s *dlqops.MemStore, n int) {
	t.Helper()
	for i := range n {
		dl := dlqtest.Letter(fmt.Sprintf("c-%02d", i), "g", "orders", "h", time.Duration(i)*time.Second)
		dl.Payload = []byte(fmt.Sprintf("p-%02d", i))
		if _, err := s.Add(context.Background(), dl); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCanaryHaltsWhenAWavePassesTheRatio: a wave at the ratio goes on, the
// first wave past it halts; the letters of later waves keep StatusNew.
func TestCanaryHaltsWhenAWavePassesTheRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		seedCanary(t, s, 20)
		mon, _ := dlqops.NewMonitor(s)
		// wave 1 (c-00, c-01): one fails, 0.5 is not past 0.5; wave 2
		// (c-02..c-05): three fail, 0.75 is
		pub := &flaky{mon: mon, delay: 3 * time.Second, fail: func(p string) bool {
			return p == "p-00" || p == "p-02" || p == "p-03" || p == "p-04"
		}}
		r, err := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got, err := r.Canary(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Group: "g"}},
			dlqops.CanaryPlan{Waves: []int{2, 4}, MaxFailureRatio: 0.5, Wait: 10 * time.Second, Poll: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pub.wg.Wait()
		want := []dlqops.CanaryWave{
			{Wave: 1, Size: 2, Replayed: 2, FailedAgain: 1, Processed: 1},
			{Wave: 2, Size: 4, Replayed: 4, FailedAgain: 3, Halted: true},
		}
		if fmt.Sprint(got.Waves) != fmt.Sprint(want) || !got.Halted || !got.Done {
			t.Fatalf("got %+v\nwant waves %+v, halted", got, want)
		}
		// wave 1 waited its 10s for c-01; wave 2 halted at the first poll
		// that saw its third failure, 3s (the downstream's delay) after its
		// publish, or the poll after when both fall on the same instant
		if d := time.Since(start); d < 13*time.Second || d > 14*time.Second {
			t.Errorf("the run took %s, want 13s or 14s", d)
		}
		left, _ := s.List(context.Background(), dlqops.Filter{Group: "g", Statuses: []dlqops.Status{dlqops.StatusNew}})
		if len(left) != 14 {
			t.Errorf("%d letters left new, want the 14 of no wave", len(left))
		}
		evs, _ := s.Events(context.Background(), "c-05", 10)
		if len(evs) != 2 || evs[1].Action != dlqops.EventCanaryHalted {
			t.Errorf("events of the letter pending at the halt: %+v", evs)
		}
		evs, _ = s.Events(context.Background(), "c-01", 10)
		if len(evs) != 2 || evs[1].Action != dlqops.EventProcessed {
			t.Errorf("events of a processed letter: %+v", evs)
		}
	})
}

// TestCanaryRepeatsTheLastWave: after the listed sizes the last repeats
// until the selection is exhausted.
func TestCanaryRepeatsTheLastWave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		seedCanary(t, s, 10)
		mon, _ := dlqops.NewMonitor(s)
		pub := &flaky{mon: mon, fail: func(string) bool { return false }}
		r, _ := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0))
		var reports []dlqops.CanaryProgress
		got, err := r.Canary(context.Background(), dlqops.ReplaySelection{}, dlqops.CanaryPlan{Waves: []int{1, 3}, Wait: time.Second},
			func(p dlqops.CanaryProgress) { reports = append(reports, p) })
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, w := range got.Waves {
			sizes = append(sizes, w.Replayed)
		}
		if fmt.Sprint(sizes) != "[1 3 3 3]" || got.Processed != 10 || got.Halted {
			t.Errorf("got waves of %v, %+v; want 1 3 3 3, all processed", sizes, got)
		}
		if len(reports) == 0 || !reports[len(reports)-1].Done {
			t.Error("no final progress report")
		}
	})
}

// TestCanaryStopsWithItsContext: a cancelled run stops while a wave waits.
func TestCanaryStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		seedCanary(t, s, 3)
		mon, _ := dlqops.NewMonitor(s)
		r, _ := dlqops.NewReplayer(s, &flaky{mon: mon, fail: func(string) bool { return false }}, dlqops.WithReplayRate(0))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := r.Canary(ctx, dlqops.ReplaySelection{}, dlqops.CanaryPlan{Wait: time.Minute}, nil)
		if !errors.Is(err, context.DeadlineExceeded) || !got.Done || got.Err == "" {
			t.Errorf("got %+v, %v; want the context's error", got, err)
		}
	})
}

func TestCanaryPlanValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		plan dlqops.CanaryPlan
		ok   bool
	}{
		{"defaults", dlqops.CanaryPlan{}, true},
		{"zero wave", dlqops.CanaryPlan{Waves: []int{1, 0}}, false},
		{"ratio 1", dlqops.CanaryPlan{MaxFailureRatio: 1}, false},
		{"negative ratio", dlqops.CanaryPlan{MaxFailureRatio: -0.1}, false},
		{"negative wait", dlqops.CanaryPlan{Wait: -time.Second}, false},
	} {
		got, err := tt.plan.Validate()
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, dlqops.ErrInvalidConfig) {
			t.Errorf("%s: got %v", tt.name, err)
		}
		if tt.name == "defaults" && (fmt.Sprint(got.Waves) != "[1 2 5 20 50 100]" || got.Wait != dlqops.DefaultCanaryWait) {
			t.Errorf("defaults: got %+v", got)
		}
	}
}

// TestReplayEdited: a rejected edit publishes nothing; an accepted one is
// published, the stored payload is kept and the edit is an event.
func TestReplayEdited(t *testing.T) {
	ctx := context.Background()
	s := dlqops.NewMemStore()
	seedCanary(t, s, 1)
	mon, _ := dlqops.NewMonitor(s)
	pub := &flaky{mon: mon, fail: func(string) bool { return false }}
	r, _ := dlqops.NewReplayer(s, pub, dlqops.WithReplayValidator(func(_ string, p []byte) error {
		if !strings.HasPrefix(string(p), "{") {
			return errors.New("not an object")
		}
		return nil
	}))
	it, err := r.ReplayEdited(ctx, "c-00", []byte("nope"), "alice")
	if !errors.Is(err, dlqops.ErrRevalidation) || it.Outcome != dlqops.OutcomeHeld || len(pub.got) != 0 {
		t.Fatalf("rejected edit: %+v %v, published %v", it, err, pub.got)
	}
	if _, err := r.ReplayEdited(ctx, "c-00", []byte(`{"fixed":true}`), "alice"); err != nil {
		t.Fatal(err)
	}
	dl, _ := s.Get(ctx, "c-00")
	if len(pub.got) != 1 || pub.got[0] != `{"fixed":true}` || string(dl.Payload) != "p-00" || dl.Status != dlqops.StatusReplayed {
		t.Errorf("published %v; stored %q %s", pub.got, dl.Payload, dl.Status)
	}
	evs, _ := s.Events(ctx, "c-00", 10)
	if len(evs) != 1 || evs[0].Action != dlqops.EventEdited || evs[0].Actor != "alice" {
		t.Errorf("events: %+v", evs)
	}
	if _, err := r.ReplayEdited(ctx, "c-00", []byte(`{}`), "alice"); !errors.Is(err, dlqops.ErrNotFound) {
		t.Errorf("edit of a replayed letter: got %v want ErrNotFound", err)
	}
}

// TestSlowCanarySeesEarlyFailures: a wave published at a slow velocity
// limit (one letter every 10s, `--rate 6/min`) takes 90s; the replays
// that fail at once, at its start, are dead-lettered more than the
// lookup's minute of clock skew before the wave starts waiting. They are
// failures all the same: 6 of 10 pass the ratio and the canary halts
// (before, the look-back started at the wait, so it saw 3 of the 6, went
// on and counted the other 3 processed).
func TestSlowCanarySeesEarlyFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		seedCanary(t, s, 20)
		mon, _ := dlqops.NewMonitor(s)
		pub := &flaky{mon: mon, fail: func(p string) bool { return p < "p-06" }}
		r, err := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0.1))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Canary(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Group: "g"}},
			dlqops.CanaryPlan{Waves: []int{10}, MaxFailureRatio: 0.5, Wait: 10 * time.Second, Poll: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pub.wg.Wait()
		want := []dlqops.CanaryWave{{Wave: 1, Size: 10, Replayed: 10, FailedAgain: 6, Halted: true}}
		if fmt.Sprint(got.Waves) != fmt.Sprint(want) || !got.Halted {
			t.Fatalf("got %+v\nwant waves %+v, halted", got, want)
		}
	})
}

// TestInterruptedCanaryRecordsItsReplay stops a canary (the console
// closing, Ctrl-C) while its first replay is published: the letter is
// marked replayed and its lineage has the replay (before, the event was
// written on the canceled context and lost).
func TestInterruptedCanaryRecordsItsReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		seedCanary(t, s, 3)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pub := &cancelingPublisher{n: 1, cancel: cancel}
		r, err := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Canary(ctx, dlqops.ReplaySelection{}, dlqops.CanaryPlan{}, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted canary: %v, want context.Canceled", err)
		}
		dl, _ := s.Get(context.Background(), "c-00")
		evs, err := s.Events(context.Background(), "c-00", 10)
		if dl.Status != dlqops.StatusReplayed || err != nil || len(evs) != 1 || evs[0].Action != dlqops.EventReplayed {
			t.Errorf("letter %s, events %+v %v: want it replayed, with its replay in the lineage", dl.Status, evs, err)
		}
	})
}

// TestCanarySeesAFailureBehindABusyTopic: while the downstream is still
// broken, new messages of the topic keep failing, 12,000 of them since the
// wave began, all before the replay is dead-lettered again. The canary
// read only the oldest 10,000 letters of the window, so it counted the
// failed replay as processed and went on; it now pages to the newest.
func TestCanarySeesAFailureBehindABusyTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		seedCanary(t, s, 1)
		start := time.Now()
		flood := make([]dlqops.Record, 12000)
		for i := range flood {
			dl := dlqtest.Letter(fmt.Sprintf("new-%05d", i), "other", "orders", "h", 0)
			dl.FailedAt = start.Add(time.Second + time.Duration(i)*time.Microsecond)
			flood[i] = dl
		}
		if _, err := s.Add(context.Background(), flood...); err != nil {
			t.Fatal(err)
		}
		mon, _ := dlqops.NewMonitor(s)
		pub := &flaky{mon: mon, delay: 3 * time.Second, fail: func(string) bool { return true }}
		r, err := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Canary(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Group: "g"}},
			dlqops.CanaryPlan{Waves: []int{1}, Wait: 10 * time.Second, Poll: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pub.wg.Wait()
		if got.FailedAgain != 1 || got.Processed != 0 || !got.Halted {
			t.Errorf("got %+v; want the replay failed again and the run halted", got)
		}
	})
}
