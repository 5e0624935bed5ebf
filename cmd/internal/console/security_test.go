package console

import (
	"context"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestInsecureLoopbackRefusesRebinding: without authentication (the
// --insecure-loopback mode) the console answers only a loopback Host, so
// a site whose name is rebound to 127.0.0.1 can neither read letters nor
// act: its requests are same-origin to the browser, so the CSRF token and
// the cross-origin protection do not stop it.
func TestInsecureLoopbackRefusesRebinding(t *testing.T) {
	st := dlqops.NewMemStore()
	if _, err := st.Add(context.Background(), dlqtest.Letter("La", "g1", "orders", "ship", 0)); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{}, Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	get := func(host string) (int, string) {
		req := httptest.NewRequest("GET", "/letter?id=La", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "127.1.2.3"} {
		if code, _ := get(host); code != 200 {
			t.Errorf("Host %s: got %d want 200", host, code)
		}
	}
	for _, host := range []string{"attacker.example:8080", "attacker.example", "127.0.0.1.attacker.example:8080", "localhost.attacker.example", "10.0.0.1:8080", ""} {
		if code, body := get(host); code != 403 || strings.Contains(body, "La") {
			t.Errorf("Host %q: got %d want 403", host, code)
		}
	}
	// the rebound page read a token from a loopback page (it cannot: its
	// own Host is refused; here it is handed one) and posts same-origin
	_, page := get("127.0.0.1:8080")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no csrf token on the letter page")
	}
	req := httptest.NewRequest("POST", "/archive", strings.NewReader(url.Values{"id": {"La"}, "csrf": {m[1]}}.Encode()))
	req.Host = "attacker.example:8080"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://attacker.example:8080")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("rebound POST: got %d want 403", rec.Code)
	}
	if dl, _ := st.Get(context.Background(), "La"); dl.Status != dlqops.StatusNew {
		t.Errorf("a rebound POST changed the letter: %s", dl.Status)
	}
}

// TestBackStaysOnTheConsole: the redirect after an archive or a restore
// goes to a path of the console only; a backslash, a tab or a newline
// (which browsers drop or read as '/') cannot make it another host.
func TestBackStaysOnTheConsole(t *testing.T) {
	f := newFixture(t)
	tok := f.csrf("alice")
	for _, back := range []string{"//evil.example", `/\evil.example`, `/\/evil.example`, "/\t/evil.example", "/\n/evil.example",
		"/\r\n/evil.example", "https://evil.example", "evil.example", `\\evil.example`} {
		rec := f.do("POST", "/archive", "alice", url.Values{"id": {"La"}, "csrf": {tok}, "back": {back}})
		if rec.Code != 303 || rec.Header().Get("Location") != "/" {
			t.Errorf("back %q: got %d %q want 303 to /", back, rec.Code, rec.Header().Get("Location"))
		}
	}
	rec := f.do("POST", "/restore", "alice", url.Values{"id": {"La"}, "csrf": {tok}, "back": {"/letter?id=La"}})
	if got := rec.Header().Get("Location"); got != "/letter?id=La" {
		t.Errorf("a console path: got %q", got)
	}
}
