package dlqtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// canaryHaltsAndFinishes: a canary replay of a group whose downstream still
// fails halts after its first wave and leaves the rest untouched; once the
// downstream is fixed, a second canary replay finishes the group. The
// waits are real time (short): the store is the real one.
func canaryHaltsAndFinishes(t *testing.T, s dlqops.Store) {
	ctx := context.Background()
	const total = 12
	var ids []string
	for i := range total {
		dl := Letter(fmt.Sprintf("c-%02d", i), "g", "orders", "h", time.Duration(i)*time.Second)
		ids = append(ids, dl.ID)
		mustAdd(t, s, dl)
	}
	down, err := NewDownstream(s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dlqops.NewReplayer(s, down, dlqops.WithReplayRate(0))
	if err != nil {
		t.Fatal(err)
	}
	plan := dlqops.CanaryPlan{Waves: []int{1, 2, 5}, Wait: 300 * time.Millisecond, Poll: 10 * time.Millisecond, Actor: "alice"}
	sel := dlqops.ReplaySelection{Filter: dlqops.Filter{Group: "g"}}
	var reports int
	got, err := r.Canary(ctx, sel, plan, func(dlqops.CanaryProgress) { reports++ })
	if err != nil {
		t.Fatal(err)
	}
	if !got.Halted || !got.Done || len(got.Waves) != 1 || got.Replayed != 1 || got.FailedAgain != 1 || reports == 0 {
		t.Fatalf("broken downstream: got %+v (%d reports), want a halt after wave 1 (1 replayed, 1 failed again)", got, reports)
	}
	rest, err := s.List(ctx, dlqops.Filter{IDs: ids[1:], Statuses: []dlqops.Status{dlqops.StatusNew}})
	if err != nil || len(rest) != total-1 {
		t.Fatalf("untouched letters: %d %v, want %d", len(rest), err, total-1)
	}
	for _, dl := range rest {
		if dl.Reason != "" || dl.ReplayCount != 0 {
			t.Errorf("letter %s touched: reason %q replay count %d", dl.ID, dl.Reason, dl.ReplayCount)
		}
	}
	if b, ok := s.(dlqops.Browser); ok {
		evs, err := b.Events(ctx, ids[0], 10)
		if err != nil || len(evs) != 2 || evs[0].Action != dlqops.EventReplayed || evs[1].Action != dlqops.EventFailedAgain || evs[0].Actor != "alice" {
			t.Errorf("events of the first letter: %+v %v, want replayed then failed_again by alice", evs, err)
		}
	}
	down.SetBroken(false)
	got, err = r.Canary(ctx, sel, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	// the untouched letters; the re-dead-letter of the first replay has
	// another error, so another group
	if got.Halted || !got.Done || got.Replayed != total-1 || got.Processed != total-1 || got.FailedAgain != 0 {
		t.Fatalf("fixed downstream: got %+v, want the %d others replayed and processed", got, total-1)
	}
	if left, err := s.List(ctx, dlqops.Filter{Group: "g", Statuses: []dlqops.Status{dlqops.StatusNew}}); err != nil || len(left) != 0 {
		t.Errorf("new letters left in the group: %d %v", len(left), err)
	}
}
