package console

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
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
		return strings.Contains(f.do("GET", "/canary?run="+f.run(1), "alice", nil).Body.String(), `http-equiv="refresh"`) &&
			f.down.Received() == 1
	})
	if rec := f.do("POST", "/canary", "alice", start); rec.Code != 409 || !strings.Contains(rec.Body.String(), "still running") {
		t.Errorf("second start of the group: got %d, want 409 naming the running canary", rec.Code)
	}
	if rec := f.do("GET", "/canary?run="+f.run(2), "alice", nil); rec.Code != 404 {
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
		return !strings.Contains(f.do("GET", "/canary?run="+f.run(1), "alice", nil).Body.String(), `http-equiv="refresh"`)
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

// leavingPublisher publishes with next and, on the way, cancels the
// request that asked for it: the operator's browser goes away while the
// broker takes the replay.
type leavingPublisher struct {
	next   message.Publisher
	cancel context.CancelFunc
}

func (p *leavingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.cancel()
	return p.next.Publish(topic, msgs...)
}

func (p *leavingPublisher) Close() error { return nil }

// TestReplayWhoseBrowserLeft: a replay from the letter page whose request
// ends while the replay is published still marks the letter replayed and
// records it in the letter's lineage and the audit log (before, the
// lineage lacked the replay: the run's canceled context stopped the page
// before it wrote the event).
func TestReplayWhoseBrowserLeft(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	pub := &leavingPublisher{next: f.down}
	audit := &testkit.Buffer{}
	srv, err := New(Config{Users: []User{{Name: "alice", Password: "alice-secret", Role: RoleAdmin}}},
		Deps{Store: f.store, Publisher: pub, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	g := &fixture{t: t, store: f.store, down: f.down, srv: srv, audit: audit}
	tok := g.csrf("alice")
	form := url.Values{"id": {"La"}, "csrf": {tok}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub.cancel = cancel
	req := httptest.NewRequest("POST", "/replay", strings.NewReader(form.Encode())).WithContext(ctx)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("alice", "alice-secret")
	srv.ServeHTTP(httptest.NewRecorder(), req)

	if dl, _ := f.store.Get(context.Background(), "La"); dl.Status != dlqops.StatusReplayed || f.down.Received() != 1 {
		t.Errorf("letter %s, %d published: want replayed once", dl.Status, f.down.Received())
	}
	evs, err := f.store.Events(context.Background(), "La", 10)
	if err != nil || len(evs) != 1 || evs[0].Action != dlqops.EventReplayed || evs[0].ReplayUUID == "" {
		t.Errorf("lineage of the letter: %+v %v, want its replay", evs, err)
	}
	if a := audit.String(); !strings.Contains(a, `"action":"replayed"`) || !strings.Contains(a, `"replayed":1`) {
		t.Errorf("audit log: %s", a)
	}

	// the same for an edit and retry
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	pub.cancel = cancel
	form = url.Values{"id": {"Lb"}, "csrf": {tok}, "payload": {`{"id":"fixed"}`}}
	req = httptest.NewRequest("POST", "/edit", strings.NewReader(form.Encode())).WithContext(ctx)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("alice", "alice-secret")
	srv.ServeHTTP(httptest.NewRecorder(), req)
	evs, err = f.store.Events(context.Background(), "Lb", 10)
	if err != nil || len(evs) != 1 || evs[0].Action != dlqops.EventEdited {
		t.Errorf("lineage of the edited letter: %+v %v, want the edit", evs, err)
	}
}

// A replay that finds nothing to claim (another run holds the letter, or
// it was replayed already) answers 409 with the reason; it redirected to
// the letter as if the replay had gone out, and only the audit log said
// "replayed": 0.
func TestReplayOfAClaimedLetterSaysSo(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	claimed, err := f.store.Claim(context.Background(), dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: []string{"La"}},
		Owner: "another-run", Now: time.Now(), Lease: time.Minute, Limit: 1})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	tok := f.csrf("alice")
	rec := f.do("POST", "/replay", "alice", url.Values{"id": {"La"}, "csrf": {tok}})
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), "nothing replayed") {
		t.Errorf("replay of a letter another run holds: got %d %s, want 409 naming why", rec.Code, rec.Body)
	}
	if n := f.down.Received(); n != 0 {
		t.Errorf("%d published, want 0", n)
	}
	if rec := f.do("POST", "/replay", "alice", url.Values{"id": {"Lb"}, "csrf": {tok}}); rec.Code != 303 {
		t.Fatalf("replay of a new letter: got %d %s", rec.Code, rec.Body)
	}
	if rec := f.do("POST", "/replay", "alice", url.Values{"id": {"Lb"}, "csrf": {tok}}); rec.Code != 409 {
		t.Errorf("second replay of a replayed letter: got %d, want 409", rec.Code)
	}
}

// TestStopCanary: an admin stops a canary while its first wave waits (a
// wait of a minute): the run ends at once, marked as stopped by them, the
// letters it did not claim stay new, the stop is audited, and the group
// may be started again. A viewer may not stop it, and a second stop is a
// conflict.
func TestStopCanary(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	tok := f.csrf("alice")
	start := url.Values{"by": {"fingerprint"}, "key": {"g1"}, "csrf": {tok}, "wait": {"1m"}}
	if rec := f.do("POST", "/canary", "alice", start); rec.Code != 303 {
		t.Fatalf("start: got %d %s", rec.Code, rec.Body)
	}
	waitFor(t, "the first wave to wait", func() bool { return f.down.Received() == 1 })
	page := f.do("GET", "/canary?run="+f.run(1), "alice", nil).Body.String()
	if !strings.Contains(page, `id="stop-canary"`) {
		t.Fatalf("a running canary's page has no stop button: %s", page)
	}
	if strings.Contains(f.do("GET", "/canary?run="+f.run(1), "victor", nil).Body.String(), `id="stop-canary"`) {
		t.Error("a viewer is offered the stop button")
	}
	stop := url.Values{"run": {f.run(1)}, "csrf": {tok}}
	if rec := f.do("POST", "/canary/stop", "victor", url.Values{"run": {f.run(1)}, "csrf": {f.srv.csrfToken(principal{"victor", RoleViewer})}}); rec.Code != 403 {
		t.Errorf("a viewer's stop: got %d want 403", rec.Code)
	}
	if rec := f.do("POST", "/canary/stop", "alice", stop); rec.Code != 303 || rec.Header().Get("Location") != "/canary?run="+f.run(1) {
		t.Fatalf("stop: got %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	waitFor(t, "the canary to end", func() bool {
		return strings.Contains(f.do("GET", "/canary?run="+f.run(1), "alice", nil).Body.String(), "STOPPED by alice")
	})
	page = f.do("GET", "/canary?run="+f.run(1), "alice", nil).Body.String()
	if strings.Contains(page, `http-equiv="refresh"`) || strings.Contains(page, `id="stop-canary"`) {
		t.Errorf("a stopped canary's page still refreshes or offers a stop: %s", page)
	}
	if got := f.down.Received(); got != 1 {
		t.Errorf("published %d replays, want only the first wave's 1", got)
	}
	left, _ := f.store.List(context.Background(), dlqops.Filter{Group: "g1", Statuses: []dlqops.Status{dlqops.StatusNew}})
	if len(left) != 4 {
		t.Errorf("%d letters of the group still new, want the 4 the canary did not claim", len(left))
	}
	if rec := f.do("POST", "/canary/stop", "alice", stop); rec.Code != 409 {
		t.Errorf("stopping an ended canary: got %d want 409", rec.Code)
	}
	if rec := f.do("POST", "/canary/stop", "alice", url.Values{"run": {"7"}, "csrf": {tok}}); rec.Code != 404 {
		t.Errorf("stopping no such run: got %d want 404", rec.Code)
	}
	if a := f.audit.String(); !strings.Contains(a, `"action":"canary_stopped"`) || !strings.Contains(a, `"actor":"alice"`) {
		t.Errorf("the stop is not audited: %s", a)
	}
	if rec := f.do("POST", "/canary", "alice", start); rec.Code != 303 {
		t.Errorf("start after the stop: got %d %s", rec.Code, rec.Body)
	}
}
