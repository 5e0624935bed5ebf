package console

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestCanaryTwoOperators: while a canary of a group waits for its first
// wave, a second start of the same group (another tab) is refused with
// 409 and starts nothing, and another operator's `levee dlq replay` of the
// group takes the letters the canary has not claimed: between them each
// letter is published once. Once the canary is done the group may be
// started again.
func TestCanaryTwoOperators(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	start := url.Values{"by": {"fingerprint"}, "key": {"g1"}, "csrf": {f.csrf("alice")}, "wait": {"1s"}}
	if rec := f.do("POST", "/canary", "alice", start); rec.Code != 303 {
		t.Fatalf("first start: got %d %s", rec.Code, rec.Body)
	}
	waitFor(t, "the first wave to wait", func() bool {
		return strings.Contains(f.do("GET", "/canary?run=1", "alice", nil).Body.String(), `http-equiv="refresh"`) &&
			f.down.Received() == 1
	})
	if rec := f.do("POST", "/canary", "alice", start); rec.Code != 409 || !strings.Contains(rec.Body.String(), "still running") {
		t.Errorf("second start of the group: got %d, want 409 naming the running canary", rec.Code)
	}
	if rec := f.do("GET", "/canary?run=2", "alice", nil); rec.Code != 404 {
		t.Errorf("a refused start left run 2: %d", rec.Code)
	}
	rp, err := dlqops.NewReplayer(f.store, f.down, dlqops.WithReplayRate(0))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := rp.Replay(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Group: "g1"}})
	if err != nil || rep.Replayed != 4 {
		t.Errorf("the other operator's replay: %+v %v, want the 4 letters the canary did not take", rep, err)
	}
	waitFor(t, "the canary to finish", func() bool {
		return !strings.Contains(f.do("GET", "/canary?run=1", "alice", nil).Body.String(), `http-equiv="refresh"`)
	})
	if got := f.down.Received(); got != 5 {
		t.Errorf("published %d replays of the group's 5 letters, want each once", got)
	}
	left, _ := f.store.List(context.Background(), dlqops.Filter{Group: "g1", Statuses: []dlqops.Status{dlqops.StatusNew}})
	if len(left) != 0 {
		t.Errorf("%d letters of the group still new", len(left))
	}
	if rec := f.do("POST", "/canary", "alice", start); rec.Code != 303 {
		t.Errorf("start after the canary finished: got %d %s", rec.Code, rec.Body)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
