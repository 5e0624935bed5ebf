package console

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
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

// formValues are the values of a page's form fields, which go back to
// the console as they are.
var formValues = regexp.MustCompile(`(?s) value="[^"]*"|<textarea[^>]*>.*</textarea>`)

// TestBidiControlsShowAsEscapes: a letter's text with bidirectional
// controls (U+202E reverses what follows it, the Trojan Source trick)
// shows them as escapes on every page, so a topic, handler, error or
// group key cannot pass for another or reorder the text around it; form
// fields (the edit's text area, the search and canary forms) keep the
// text as it is, so what goes back to the console is what the letter
// holds.
func TestBidiControlsShowAsEscapes(t *testing.T) {
	f := newFixture(t)
	const rlo = "\u202e"
	l := dlqtest.Letter("bidi", "gb", "pay"+rlo+"sredro", "ship"+rlo+"x", 20*time.Minute)
	l.Error = "failed " + rlo + "gnp.exe"
	l.Payload = []byte("text " + rlo + " payload")
	l.Reason, l.ErrorType, l.ConsumerGroup = "r"+rlo, "t"+rlo, "c"+rlo
	l.Metadata["k"+rlo] = "v" + rlo
	l.Metadata[dlq.KeyStack] = "stack " + rlo
	l.Metadata[dlq.KeyCodeLocation] = "loc " + rlo
	if _, err := f.store.Add(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	topic := url.QueryEscape("pay" + rlo + "sredro")
	for _, target := range []string{"/letter?id=bidi", "/", "/?by=topic", "/?by=handler", "/group?by=topic&key=" + topic,
		"/group?by=handler&key=" + url.QueryEscape("ship"+rlo+"x"), "/search?topic=" + topic, "/letter?id=" + url.QueryEscape("no"+rlo)} {
		body := f.do("GET", target, "alice", nil).Body.String()
		if strings.Contains(formValues.ReplaceAllString(body, ""), rlo) {
			t.Errorf("%s: a raw U+202E on the page (besides form values)", target)
		}
		if !strings.Contains(body, `\u202e`) {
			t.Errorf("%s: no visible \\u202e", target)
		}
	}
	body := f.do("GET", "/edit?id=bidi", "alice", nil).Body.String()
	if n := strings.Count(body, rlo); n != 1 || !strings.Contains(body, ">\ntext "+rlo+" payload</textarea>") {
		t.Errorf("edit page: %d raw U+202E, want the payload's one in the text area", n)
	}
	// the group key goes back to the canary form as it is
	body = f.do("GET", "/group?by=topic&key="+topic, "alice", nil).Body.String()
	if !strings.Contains(body, `name="key" value="pay`+rlo+`sredro"`) {
		t.Error("the canary form's key is not the group's")
	}
}

// TestEmptyGroupKeyIsRefused: letters without a handler (or a topic) make
// a group "(none)" on the groups page, but an empty key filters nothing,
// so its group page showed every letter and its canary replayed every new
// letter of the store. An empty key is now refused, and "(none)" is not a
// link.
func TestEmptyGroupKeyIsRefused(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.Add(context.Background(), dlqtest.Letter("nohandler", "g9", "orders", "", 30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if body := f.do("GET", "/?by=handler", "alice", nil).Body.String(); !strings.Contains(body, "(none)") ||
		strings.Contains(body, `key=">`) {
		t.Error(`the groups page links "(none)" to an empty key`)
	}
	tok := f.csrf("alice")
	for _, by := range []string{"handler", "topic", "fingerprint"} {
		if rec := f.do("GET", "/group?by="+by+"&key=", "alice", nil); rec.Code != 400 {
			t.Errorf("group page by %s with an empty key: got %d want 400", by, rec.Code)
		}
		rec := f.do("POST", "/canary", "alice", url.Values{"by": {by}, "key": {""}, "csrf": {tok}, "wait": {"10ms"}})
		if rec.Code != 400 {
			t.Errorf("canary by %s with an empty key: got %d want 400", by, rec.Code)
		}
	}
	if runs := f.srv.canaries.forGroup("handler", ""); len(runs) != 0 {
		t.Errorf("a canary of an empty key ran: %d runs", len(runs))
	}
}

// TestOversizedFormIsRefused: a POST body past maxForm (an edit of a
// huge payload), URL-encoded or multipart, is refused with 413 and says
// so, not as a wrong CSRF token, and publishes nothing.
func TestOversizedFormIsRefused(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	fields := map[string]string{"id": "La", "csrf": f.csrf("alice"), "payload": `{"id":"` + strings.Repeat("x", maxForm) + `"}`}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	form := url.Values{}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
		form.Set(k, v)
	}
	_ = mw.Close()
	for _, tt := range []struct{ name, ctype, body string }{
		{"urlencoded", "application/x-www-form-urlencoded", form.Encode()},
		{"multipart", mw.FormDataContentType(), mp.String()},
	} {
		req := httptest.NewRequest("POST", "/edit", strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.ctype)
		req.SetBasicAuth("alice", "alice-secret")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		if rec.Code != 413 || !strings.Contains(rec.Body.String(), "at most") {
			t.Errorf("%s: got %d %q, want 413", tt.name, rec.Code, rec.Body.String())
		}
	}
	if dl, _ := f.store.Get(context.Background(), "La"); dl.Status != dlqops.StatusNew {
		t.Errorf("an oversized edit changed the letter: %s", dl.Status)
	}
}

// TestSecurityHeadersOnEveryAnswer: the content security policy, no
// sniffing, no framing (clickjacking an operator into a replay), no
// referrer and no caching are on every answer, refusals and redirects
// included, not only on pages.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	f := newFixture(t)
	tok := f.csrf("alice")
	for _, tt := range []struct {
		name, method, target, user string
		form                       url.Values
		code                       int
	}{
		{"page", "GET", "/letter?id=La", "alice", nil, 200},
		{"static", "GET", "/static/console.css", "alice", nil, 200},
		{"anonymous", "GET", "/", "", nil, 401},
		{"viewer POST", "POST", "/archive", "victor", url.Values{"id": {"La"}}, 403},
		{"no token", "POST", "/archive", "alice", url.Values{"id": {"La"}}, 403},
		{"redirect", "POST", "/archive", "alice", url.Values{"id": {"La"}, "csrf": {tok}}, 303},
		{"not found", "GET", "/letter?id=nope", "alice", nil, 404},
	} {
		rec := f.do(tt.method, tt.target, tt.user, tt.form)
		if rec.Code != tt.code {
			t.Errorf("%s: got %d want %d", tt.name, rec.Code, tt.code)
		}
		h := rec.Header()
		for k, want := range map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
			if !strings.Contains(h.Get(k), want) {
				t.Errorf("%s: %s is %q, want %q in it", tt.name, k, h.Get(k), want)
			}
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: CSP %q", tt.name, csp)
		}
	}
}
