package dlqops_test

import (
	"context"
	"errors"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestInterruptedReplayStopsAtOnce interrupts a run without a velocity
// limit (`levee dlq replay --rate 0`) during its second publish: the run
// publishes nothing more, and the letters it had claimed but not sent are
// given back at once, so the next run sends them without waiting for the
// lease. Before, only the limiter's wait saw the interruption: without a
// limit the run published the rest of its claim (up to 100 letters) after
// Ctrl-C.
func TestInterruptedReplayStopsAtOnce(t *testing.T) {
	s := dlqops.NewMemStore()
	const n = 10
	opsSeed(t, s, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &cancelingPublisher{n: 2, cancel: cancel}
	r, err := dlqops.NewReplayer(s, p, dlqops.WithReplayRate(0), dlqops.WithReplayOwner("interrupted"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted run: %v, want context.Canceled", err)
	}
	if msgs, _, _ := p.sent(); len(msgs) != 2 || rep.Replayed != 2 {
		t.Errorf("interrupted at its second publish, the run published %d (report: %d replayed), want 2", len(msgs), rep.Replayed)
	}
	rep, err = opsReplayer(t, s, &p.opsPublisher, dlqops.WithReplayOwner("next")).Replay(context.Background(), dlqops.ReplaySelection{})
	if err != nil || rep.Replayed != n-2 {
		t.Errorf("the next run at once: %d replayed (%v), want %d", rep.Replayed, err, n-2)
	}
}
