package console

import (
	"net/url"
	"strings"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestCanaryPageAfterARestart: a console killed during a canary and
// started again keeps no runs. The page of the old run, which an
// operator's browser refreshes by itself, must not show another run:
// before, the runs were numbered from 1 in each process, so after a
// restart "/canary?run=1" showed the first canary the new process ran,
// another operator's of another group, under the old page's address.
// It answers 404 and says where the old run's record is.
func TestCanaryPageAfterARestart(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	start := func(f *fixture, key string) string {
		t.Helper()
		rec := f.do("POST", "/canary", "alice", url.Values{"by": {"fingerprint"}, "key": {key}, "csrf": {f.srv.csrfToken(principal{"alice", RoleAdmin})}, "wait": {"1m"}})
		if rec.Code != 303 {
			t.Fatalf("start %s: got %d %s", key, rec.Code, rec.Body)
		}
		return rec.Header().Get("Location")
	}
	old := start(f, "g1")
	waitFor(t, "the first wave to wait", func() bool { return f.down.Received() == 1 })
	// the restart: a new console over the same store (the old one's
	// claims are held until their lease ends, as after a SIGKILL)
	other := dlqtest.Letter("other-1", "g2", "orders", "ship", 0)
	mustAddLetter(t, f.store, other)
	srv, err := New(f.srv.cfg, f.srv.deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	g := &fixture{t: t, store: f.store, down: f.down, srv: srv, audit: f.audit}
	if again := start(g, "g2"); again == old {
		t.Errorf("the restarted console gave its first run the old run's address %s", old)
	}
	rec := g.do("GET", old, "alice", nil)
	body := rec.Body.String()
	if rec.Code != 404 || strings.Contains(body, "g2") {
		t.Fatalf("the old run's page after a restart: got %d, want 404 (not the new run of g2): %s", rec.Code, body)
	}
	if !strings.Contains(body, "restart") || !strings.Contains(body, "lineage") {
		t.Errorf("the 404 does not say a restart forgets runs, nor where their record is: %s", body)
	}
}

func mustAddLetter(t *testing.T, s dlqops.Store, dl dlqops.Record) {
	t.Helper()
	if _, err := s.Add(t.Context(), dl); err != nil {
		t.Fatal(err)
	}
}
