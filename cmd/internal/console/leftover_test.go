package console

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestFinishedCanarySaysWhyLettersAreLeft: a console killed mid-canary
// leaves the letters it had claimed held by its claims until their lease
// ends. A canary started after the restart skips them and finishes: its
// page said FINISHED and, apart, "new letters left in the group: 2", and
// nothing told the operator why a finished canary left letters new, nor
// what to do. It now says they are held by a replay's claim (a killed
// console's until its lease ends) or held back (each letter's reason),
// and that a later canary takes up the claimed ones.
func TestFinishedCanarySaysWhyLettersAreLeft(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	// the killed console's claims: letters it took and never marked
	claimed, err := f.store.Claim(context.Background(), dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: []string{"Lc", "Ld"}},
		Owner: "killed-console", Now: time.Now(), Lease: dlqops.DefaultReplayLease, Limit: 2})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %v %d", err, len(claimed))
	}
	rec := f.do("POST", "/canary", "alice", url.Values{"by": {"fingerprint"}, "key": {"g1"}, "csrf": {f.csrf("alice")}, "wait": {"100ms"}})
	if rec.Code != 303 {
		t.Fatalf("start: got %d %s", rec.Code, rec.Body)
	}
	var page string
	waitFor(t, "the canary to finish", func() bool {
		page = f.do("GET", rec.Header().Get("Location"), "alice", nil).Body.String()
		return strings.Contains(page, "FINISHED")
	})
	if !strings.Contains(page, `id="left">2<`) {
		t.Fatalf("want 2 letters left: %s", page)
	}
	if !strings.Contains(page, "claim") || !strings.Contains(page, "lease") || !strings.Contains(page, "reason") {
		t.Errorf("a finished canary that left letters new does not say why: %s", page)
	}
}
