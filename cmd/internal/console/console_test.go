package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/internal/testkit"
)

const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>`

// fixture is a console on a MemStore with a broken downstream.
type fixture struct {
	t     *testing.T
	store *dlqops.MemStore
	down  *dlqtest.Downstream
	srv   *Server
	audit *testkit.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := dlqops.NewMemStore()
	var letters []dlqops.Record
	for i := range 5 {
		letters = append(letters, dlqtest.Letter("L"+string(rune('a'+i)), "g1", "orders", "ship", time.Duration(i)*time.Minute))
	}
	h := dlqtest.Letter("hostile", hostile, "orders", "ship", 10*time.Minute)
	h.Error, h.Payload, h.Handler = hostile, []byte(hostile), hostile
	h.Metadata[hostile] = hostile
	h.Metadata["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h.Metadata[dlq.KeyStack] = "goroutine 1 [running]:\n" + hostile
	h.Metadata[dlq.KeyCodeLocation] = "example.com/orders.Ship (ship.go:12) " + hostile
	letters = append(letters, h)
	if _, err := st.Add(context.Background(), letters...); err != nil {
		t.Fatal(err)
	}
	down, err := dlqtest.NewDownstream(st)
	if err != nil {
		t.Fatal(err)
	}
	audit := &testkit.Buffer{}
	cfg := Config{Users: []User{{Name: "alice", Password: "alice-secret", Role: RoleAdmin}, {Name: "victor", Password: "victor-secret", Role: RoleViewer}},
		Tokens:    []Token{{Name: "ci", Token: "0123456789abcdef0123", Role: RoleAdmin}},
		TraceLink: "https://jaeger.example/trace/{trace_id}",
		Canary:    Canary{Waves: []int{1, 2, 5}, Wait: 200 * time.Millisecond, Rate: 0}}
	validator := func(topic string, payload []byte) error {
		if !bytes.HasPrefix(payload, []byte(`{"id"`)) {
			return errors.New("payload: missing property id")
		}
		return nil
	}
	srv, err := New(cfg, Deps{Store: st, Publisher: down, Validator: validator, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &fixture{t: t, store: st, down: down, srv: srv, audit: audit}
}

func (f *fixture) do(method, target, user string, form url.Values) *httptest.ResponseRecorder {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	switch user {
	case "alice":
		req.SetBasicAuth("alice", "alice-secret")
	case "victor":
		req.SetBasicAuth("victor", "victor-secret")
	case "token":
		req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// csrf returns alice's form token as a page carries it.
func (f *fixture) csrf(user string) string {
	f.t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(f.do("GET", "/letter?id=La", user, nil).Body.String())
	if m == nil {
		f.t.Fatal("no csrf token on the letter page")
	}
	return m[1]
}

func TestPages(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, target string
		code         int
		want         []string
	}{
		{"groups", "/", 200, []string{"g1", "<svg class=\"trend\"", "5</td>"}},
		{"groups by topic", "/?by=topic", 200, []string{"orders"}},
		{"groups by handler", "/?by=handler", 200, []string{"ship"}},
		{"bad grouping", "/?by=colour", 400, []string{"unknown grouping"}},
		{"group", "/group?by=fingerprint&key=g1", 200, []string{"failure of L", "Start canary replay", "La"}},
		{"unknown group", "/group?key=nope", 404, nil},
		{"letter", "/letter?id=La", 200, []string{"&#34;id&#34;: &#34;La&#34;", "json", "Edit and retry", "Archive"}},
		{"unknown letter", "/letter?id=nope", 404, nil},
		{"search by text", "/search?text=FAILURE+OF+LC", 200, []string{"Lc"}},
		{"search by class", "/search?class=validation", 200, []string{"no letters"}},
		{"search by time", "/search?since=2026-03-01T12:03&topic=orders", 200, []string{"Ld", "Le"}},
		{"bad time", "/search?since=yesterday", 400, nil},
		{"archive page", "/search?status=archived", 200, []string{"Restore selected"}},
		{"edit page", "/edit?id=La", 200, []string{"<textarea"}},
		{"static", "/static/console.css", 200, []string{"body{"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("GET", tt.target, "alice", nil)
			if rec.Code != tt.code {
				t.Fatalf("got %d want %d: %s", rec.Code, tt.code, rec.Body)
			}
			for _, w := range tt.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

// TestHostileLetterRendersAsText: a letter whose payload, metadata,
// handler, stack and error are HTML and script renders them as text on
// every page that shows them.
func TestHostileLetterRendersAsText(t *testing.T) {
	f := newFixture(t)
	for _, target := range []string{"/letter?id=hostile", "/", "/search?text=script", "/group?key=" + url.QueryEscape(hostile),
		"/?by=handler", "/edit?id=hostile"} {
		body := f.do("GET", target, "alice", nil).Body.String()
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
			t.Errorf("%s: hostile markup rendered raw", target)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: hostile text not shown escaped", target)
		}
	}
	body := f.do("GET", "/letter?id=hostile", "alice", nil).Body.String()
	for _, w := range []string{`href="https://jaeger.example/trace/4bf92f3577b34da6a3ce929d0e0e4736"`, "goroutine 1 [running]", "example.com/orders.Ship (ship.go:12)"} {
		if !strings.Contains(body, w) {
			t.Errorf("letter page lacks %q", w)
		}
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	if rec := f.do("GET", "/", "", nil); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("anonymous: got %d", rec.Code)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.SetBasicAuth("alice", "wrong-password")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Errorf("wrong password: got %d", rec.Code)
	}
	if rec := f.do("GET", "/", "token", nil); rec.Code != 200 {
		t.Errorf("token: got %d", rec.Code)
	}
	if rec := f.do("GET", "/", "victor", nil); rec.Code != 200 || strings.Contains(rec.Body.String(), "Archive selected") {
		t.Errorf("viewer reads without actions: got %d", rec.Code)
	}
	if rec := f.do("GET", "/letter?id=La", "victor", nil); strings.Contains(rec.Body.String(), "Edit and retry") {
		t.Error("viewer sees actions")
	}
	rec = f.do("POST", "/archive", "victor", url.Values{"id": {"La"}, "csrf": {f.srv.csrfToken(principal{"victor", RoleViewer})}})
	if rec.Code != 403 {
		t.Errorf("viewer POST: got %d want 403", rec.Code)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	if rec := f.do("POST", "/archive", "alice", url.Values{"id": {"La"}}); rec.Code != 403 {
		t.Errorf("no token: got %d want 403", rec.Code)
	}
	if rec := f.do("POST", "/archive", "alice", url.Values{"id": {"La"}, "csrf": {f.csrf("token")}}); rec.Code != 403 {
		t.Errorf("another user's token: got %d want 403", rec.Code)
	}
	req := httptest.NewRequest("POST", "/archive", strings.NewReader(url.Values{"id": {"La"}, "csrf": {f.csrf("alice")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.SetBasicAuth("alice", "alice-secret")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("cross-site POST: got %d want 403", rec.Code)
	}
	if dl, _ := f.store.Get(context.Background(), "La"); dl.Status != dlqops.StatusNew {
		t.Errorf("a refused POST changed the letter: %s", dl.Status)
	}
}

func TestArchiveAndRestore(t *testing.T) {
	f := newFixture(t)
	tok := f.csrf("alice")
	if rec := f.do("POST", "/archive", "alice", url.Values{"id": {"La", "Lb"}, "csrf": {tok}, "back": {"//evil.example"}}); rec.Code != 303 || rec.Header().Get("Location") != "/" {
		t.Fatalf("archive: got %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if body := f.do("GET", "/search?status=archived", "alice", nil).Body.String(); !strings.Contains(body, "La") || !strings.Contains(body, "Lb") {
		t.Error("archived letters not on the archive page")
	}
	if rec := f.do("POST", "/restore", "alice", url.Values{"id": {"La"}, "csrf": {tok}}); rec.Code != 303 {
		t.Fatalf("restore: got %d", rec.Code)
	}
	// archiving an archived letter changes nothing and records nothing
	if rec := f.do("POST", "/archive", "alice", url.Values{"id": {"Lb"}, "csrf": {tok}}); rec.Code != 303 {
		t.Fatalf("archive again: got %d", rec.Code)
	}
	if evs, _ := f.store.Events(context.Background(), "Lb", 10); len(evs) != 1 {
		t.Errorf("events of Lb after a second archive: %+v, want the first only", evs)
	}
	la, _ := f.store.Get(context.Background(), "La")
	lb, _ := f.store.Get(context.Background(), "Lb")
	if la.Status != dlqops.StatusNew || lb.Status != dlqops.StatusArchived {
		t.Errorf("statuses %s %s, want new archived", la.Status, lb.Status)
	}
	body := f.do("GET", "/letter?id=La", "alice", nil).Body.String()
	if !strings.Contains(body, "ev-archived") || !strings.Contains(body, "ev-restored") {
		t.Error("the lineage lacks the archive and the restore")
	}
	if a := f.audit.String(); strings.Count(a, `"action":"archived"`) != 2 || strings.Count(a, `"action":"restored"`) != 1 || !strings.Contains(a, `"actor":"alice"`) {
		t.Errorf("audit log: %s", a)
	}
	// A browser reads these as //evil.example too.
	for _, back := range []string{"/\\evil.example", "/\t/evil.example", "/\n/evil.example"} {
		if rec := f.do("POST", "/archive", "alice", url.Values{"id": {"Lb"}, "csrf": {tok}, "back": {back}}); rec.Header().Get("Location") != "/" {
			t.Errorf("back %q: got %d %q, want /", back, rec.Code, rec.Header().Get("Location"))
		}
	}
}

func TestReplayAndEdit(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	tok := f.csrf("alice")
	if rec := f.do("POST", "/replay", "alice", url.Values{"id": {"La"}, "csrf": {tok}}); rec.Code != 303 {
		t.Fatalf("replay: got %d %s", rec.Code, rec.Body)
	}
	if dl, _ := f.store.Get(context.Background(), "La"); dl.Status != dlqops.StatusReplayed {
		t.Errorf("replayed letter is %s", dl.Status)
	}
	rec := f.do("POST", "/edit", "alice", url.Values{"id": {"Lb"}, "csrf": {tok}, "payload": {`{"nope":1}`}})
	if rec.Code != 422 || !strings.Contains(rec.Body.String(), "missing property id") {
		t.Fatalf("invalid edit: got %d %s", rec.Code, rec.Body)
	}
	if f.down.Received() != 1 {
		t.Errorf("an invalid edit was published")
	}
	if rec := f.do("POST", "/edit", "alice", url.Values{"id": {"Lb"}, "csrf": {tok}, "payload": {`{"id":"fixed"}`}}); rec.Code != 303 {
		t.Fatalf("valid edit: got %d %s", rec.Code, rec.Body)
	}
	dl, _ := f.store.Get(context.Background(), "Lb")
	if string(dl.Payload) != `{"id":"Lb"}` || dl.Status != dlqops.StatusReplayed {
		t.Errorf("original not kept: %q %s", dl.Payload, dl.Status)
	}
	if body := f.do("GET", "/letter?id=Lb", "alice", nil).Body.String(); !strings.Contains(body, "ev-edited") {
		t.Error("the lineage lacks the edit")
	}
	if a := f.audit.String(); !strings.Contains(a, `"action":"edited"`) || !strings.Contains(a, `"action":"replayed"`) {
		t.Errorf("audit log: %s", a)
	}
}

func TestCanaryFromTheConsole(t *testing.T) {
	f := newFixture(t)
	rec := f.do("POST", "/canary", "alice", url.Values{"by": {"fingerprint"}, "key": {"g1"}, "csrf": {f.csrf("alice")}, "wait": {"200ms"}})
	if rec.Code != 303 || !strings.HasPrefix(rec.Header().Get("Location"), "/canary?run=") {
		t.Fatalf("start: got %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		body = f.do("GET", "/canary?run="+f.run(1), "alice", nil).Body.String()
		if strings.Contains(body, "HALTED") {
			break
		}
		if !strings.Contains(body, `http-equiv="refresh"`) {
			t.Fatalf("a running canary page does not refresh: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, "HALTED") || strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("canary did not halt: %s", body)
	}
	left, _ := f.store.List(context.Background(), dlqops.Filter{Group: "g1", Statuses: []dlqops.Status{dlqops.StatusNew}})
	if len(left) != 4 {
		t.Errorf("untouched letters: %d want 4", len(left))
	}
	if !strings.Contains(f.audit.String(), `"action":"canary_started"`) {
		t.Error("audit log lacks the canary")
	}
}

// TestCanaryRateMustBeFinite: a NaN or infinite rate is the form's bad
// input (400); it parsed, and the replayer refused it as a conflict (409).
func TestCanaryRateMustBeFinite(t *testing.T) {
	f := newFixture(t)
	for _, rate := range []string{"NaN", "+Inf", "-1"} {
		rec := f.do("POST", "/canary", "alice", url.Values{"by": {"fingerprint"}, "key": {"g1"}, "csrf": {f.csrf("alice")}, "rate": {rate}})
		if rec.Code != 400 {
			t.Errorf("rate %s: got %d, want 400", rate, rec.Code)
		}
	}
}

func TestCheckListen(t *testing.T) {
	none := &Config{}
	for _, tt := range []struct {
		addr     string
		insecure bool
		ok       bool
	}{
		{"127.0.0.1:8080", false, false}, {"127.0.0.1:8080", true, true}, {"[::1]:0", true, true},
		{"localhost:9", true, true}, {"0.0.0.0:8080", true, false}, {":8080", true, false},
	} {
		if err := CheckListen(none, tt.addr, tt.insecure); (err == nil) != tt.ok {
			t.Errorf("%s insecure=%v: got %v", tt.addr, tt.insecure, err)
		}
	}
	if err := CheckListen(&Config{Tokens: []Token{{Name: "a", Token: "0123456789abcdef", Role: RoleViewer}}}, "0.0.0.0:1", false); err != nil {
		t.Errorf("with a token: %v", err)
	}
}

func TestGroupsPaging(t *testing.T) {
	f := newFixture(t)
	var letters []dlqops.Record
	for i := range groupsPerPage + 10 {
		letters = append(letters, dlqtest.Letter("p"+strconv.Itoa(i), fmt.Sprintf("grp-%03d", i), "orders", "ship", time.Duration(i)*time.Second))
	}
	if _, err := f.store.Add(context.Background(), letters...); err != nil {
		t.Fatal(err)
	}
	first := f.do("GET", "/", "alice", nil).Body.String()
	second := f.do("GET", "/?by=fingerprint&page=1", "alice", nil).Body.String()
	if !strings.Contains(first, "groups 1 to 50 of 62") || !strings.Contains(first, `&amp;by=fingerprint&amp;page=1"`) {
		t.Errorf("first page lacks its range or next link")
	}
	if !strings.Contains(second, "groups 51 to 62 of 62") || !strings.Contains(second, "previous groups") || strings.Contains(second, "next groups") {
		t.Errorf("second page lacks its range or links")
	}
	if rows := strings.Count(second, `class="group"`); rows != 12 {
		t.Errorf("second page shows %d groups, want 12", rows)
	}
}

// run returns the ID of the console's nth canary run.
func (f *fixture) run(n int) string { return f.srv.canaries.prefix + "-" + strconv.Itoa(n) }
