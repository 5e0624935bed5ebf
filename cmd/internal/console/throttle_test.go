package console

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

// throttleFixture is a console with one admin, a token and a clock the
// test moves.
type throttleFixture struct {
	t     *testing.T
	srv   *Server
	audit *testkit.Buffer
	now   time.Time
}

func newThrottleFixture(t *testing.T, lt LoginThrottle) *throttleFixture {
	t.Helper()
	f := &throttleFixture{t: t, audit: &testkit.Buffer{}, now: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)}
	cfg := Config{Users: []User{{Name: "alice", Password: "alice-secret", Role: RoleAdmin}},
		Tokens: []Token{{Name: "ci", Token: "0123456789abcdef0123", Role: RoleAdmin}}, LoginThrottle: lt}
	srv, err := New(cfg, Deps{Store: dlqops.NewMemStore(), Audit: f.audit, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f.srv = srv
	return f
}

// get asks for / from remote with basic auth user:pw ("" sends none; a
// user "Bearer" sends pw as a bearer token).
func (f *throttleFixture) get(remote, user, pw string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = remote
	switch user {
	case "":
	case "Bearer":
		req.Header.Set("Authorization", "Bearer "+pw)
	default:
		req.SetBasicAuth(user, pw)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// auditLines decodes the audit log's lines with the given action.
func auditLines(t *testing.T, log, action string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e["action"] == action {
			out = append(out, e)
		}
	}
	return out
}

func TestLoginThrottle(t *testing.T) {
	f := newThrottleFixture(t, LoginThrottle{})
	const attacker = "192.0.2.1:40000"
	for i := range DefaultLoginBurst {
		if rec := f.get(attacker, "alice", "guess"); rec.Code != 401 {
			t.Fatalf("failed login %d: got %d want 401", i+1, rec.Code)
		}
	}
	// the burst is spent: even the right password is refused, unread
	rec := f.get(attacker, "alice", "alice-secret")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "6" {
		t.Fatalf("after %d failures: got %d Retry-After %q, want 429 after 6 s", DefaultLoginBurst, rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := f.get(attacker, "Bearer", "0123456789abcdef0123"); rec.Code != 429 {
		t.Errorf("a bearer token from a throttled address: got %d want 429", rec.Code)
	}
	// another address is not held back, and another port is the same client
	if rec := f.get("192.0.2.2:40000", "alice", "alice-secret"); rec.Code != 200 {
		t.Errorf("another address: got %d want 200", rec.Code)
	}
	if rec := f.get("192.0.2.1:40001", "alice", "alice-secret"); rec.Code != 429 {
		t.Errorf("the same address from another port: got %d want 429", rec.Code)
	}
	// one more attempt a minute / DefaultLoginPerMinute later
	f.now = f.now.Add(time.Minute / DefaultLoginPerMinute)
	if rec := f.get(attacker, "alice", "alice-secret"); rec.Code != 200 {
		t.Errorf("after the wait, the right password: got %d want 200", rec.Code)
	}
	if rec := f.get(attacker, "alice", "alice-secret"); rec.Code != 200 {
		t.Errorf("a successful login costs nothing: got %d want 200", rec.Code)
	}

	refused := auditLines(t, f.audit.String(), "login_refused")
	if len(refused) != DefaultLoginBurst {
		t.Fatalf("audited %d refused logins, want %d (throttled requests are not audited)", len(refused), DefaultLoginBurst)
	}
	first, last := refused[0], refused[len(refused)-1]
	if first["user"] != "alice" || first["scheme"] != "basic" || first["remote"] != attacker || first["throttled"] != false {
		t.Errorf("first refused login audited as %v", first)
	}
	if last["throttled"] != true {
		t.Errorf("the failure that spent the burst is not marked throttled: %v", last)
	}
	if strings.Contains(f.audit.String(), "guess") || strings.Contains(f.audit.String(), "alice-secret") {
		t.Error("the audit log holds a password")
	}
}

func TestLoginThrottleCountsOnlyPresentedCredentials(t *testing.T) {
	f := newThrottleFixture(t, LoginThrottle{Burst: 2, PerMinute: 1})
	for range 20 {
		if rec := f.get("198.51.100.7:1", "", ""); rec.Code != 401 {
			t.Fatalf("anonymous: got %d want 401", rec.Code)
		}
	}
	if rec := f.get("198.51.100.7:1", "alice", "alice-secret"); rec.Code != 200 {
		t.Errorf("after anonymous requests (a browser's first, before its prompt): got %d want 200", rec.Code)
	}
	if n := len(auditLines(t, f.audit.String(), "login_refused")); n != 0 {
		t.Errorf("anonymous requests audited as %d refused logins", n)
	}
	for range 2 {
		f.get("198.51.100.7:1", "Bearer", "not-a-token-at-all")
	}
	if rec := f.get("198.51.100.7:1", "alice", "alice-secret"); rec.Code != 429 || rec.Header().Get("Retry-After") != "60" {
		t.Errorf("after a burst of 2 wrong tokens at 1 a minute: got %d Retry-After %q, want 429 after 60 s", rec.Code, rec.Header().Get("Retry-After"))
	}
	if got := auditLines(t, f.audit.String(), "login_refused"); len(got) != 2 || got[0]["scheme"] != "bearer" {
		t.Errorf("wrong tokens audited as %v", got)
	}
}

func TestLoginThrottleIPv6ByPrefix(t *testing.T) {
	f := newThrottleFixture(t, LoginThrottle{Burst: 1, PerMinute: 1})
	f.get("[2001:db8:1:2::1]:5000", "alice", "guess")
	if rec := f.get("[2001:db8:1:2::ffff]:5000", "alice", "alice-secret"); rec.Code != 429 {
		t.Errorf("another address of the same /64: got %d want 429", rec.Code)
	}
	if rec := f.get("[2001:db8:1:3::1]:5000", "alice", "alice-secret"); rec.Code != 200 {
		t.Errorf("another /64: got %d want 200", rec.Code)
	}
}

func TestLoginThrottleOff(t *testing.T) {
	f := newThrottleFixture(t, LoginThrottle{Off: true})
	for range 3 * DefaultLoginBurst {
		f.get("10.0.0.1:1", "alice", "guess")
	}
	if rec := f.get("10.0.0.1:1", "alice", "alice-secret"); rec.Code != 200 {
		t.Errorf("throttle off: got %d want 200", rec.Code)
	}
	if n := len(auditLines(t, f.audit.String(), "login_refused")); n != 3*DefaultLoginBurst {
		t.Errorf("throttle off: %d refused logins audited, want %d", n, 3*DefaultLoginBurst)
	}
}

func TestLoginThrottleValidate(t *testing.T) {
	for _, lt := range []LoginThrottle{{Burst: -1}, {PerMinute: -1}} {
		if err := (&Config{LoginThrottle: lt}).Validate(); err == nil {
			t.Errorf("%+v: no error", lt)
		}
	}
}

func TestRefusalsAreAudited(t *testing.T) {
	f := newFixture(t)
	f.do("POST", "/archive", "victor", url.Values{"id": {"La"}, "csrf": {f.srv.csrfToken(principal{"victor", RoleViewer})}})
	f.do("POST", "/archive", "alice", url.Values{"id": {"La"}})
	req := httptest.NewRequest("POST", "/archive", strings.NewReader(url.Values{"id": {"La"}, "csrf": {f.csrf("alice")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.SetBasicAuth("alice", "alice-secret")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Fatalf("cross-site POST: got %d want 403", rec.Code)
	}
	got := auditLines(t, f.audit.String(), "refused")
	want := []struct{ actor, reason string }{
		{"victor", "read-only role"},
		{"alice", "missing or wrong CSRF token"},
		{"alice", "cross-origin request refused"},
	}
	if len(got) != len(want) {
		t.Fatalf("audited refusals %v, want %d", got, len(want))
	}
	for i, w := range want {
		if got[i]["actor"] != w.actor || got[i]["reason"] != w.reason || got[i]["path"] != "/archive" || got[i]["method"] != "POST" {
			t.Errorf("refusal %d audited as %v, want actor %s reason %q", i, got[i], w.actor, w.reason)
		}
	}
}
