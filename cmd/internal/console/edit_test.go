package console

import (
	"context"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// payloads records what is published.
type payloads struct {
	mu  sync.Mutex
	got []string // guarded by mu
}

func (p *payloads) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.got = append(p.got, string(m.Payload))
	}
	return nil
}

func (p *payloads) Close() error { return nil }

// TestEditRoundTripsThePayload: what the edit page shows and a browser
// sends back is the letter's payload, so an edit changes only what the
// operator changed. A payload that is not text (invalid UTF-8, NUL and
// other controls, which a browser's text area replaces) cannot be edited
// as text: the page says so and has no form. A payload that starts with
// a newline keeps it (HTML drops a text area's first newline). A browser
// sends a text area's newlines as CRLF: they go back to LF when the
// letter's payload had no CR.
func TestEditRoundTripsThePayload(t *testing.T) {
	st := dlqops.NewMemStore()
	pub := &payloads{}
	add := func(id, payload string) {
		l := dlqtest.Letter(id, "g", "orders", "ship", time.Duration(len(id))*time.Minute)
		l.Payload = []byte(payload)
		if _, err := st.Add(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	add("bin", "\x08\x96\x01\xff\x00proto")
	add("nl", "\nfirst line\nsecond")
	add("crlf", "a\r\nb")
	srv, err := New(Config{}, Deps{Store: st, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	do := func(method, target string, form url.Values) string {
		var req = httptest.NewRequest(method, target, nil)
		if form != nil {
			req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Host = "127.0.0.1"
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	if body := do("GET", "/edit?id=bin", nil); strings.Contains(body, "<textarea") || !strings.Contains(body, "not text") {
		t.Errorf("a binary payload is offered for editing as text")
	}
	body := do("GET", "/edit?id=nl", nil)
	if !strings.Contains(body, ">\n\nfirst line\nsecond</textarea>") {
		t.Errorf("the text area loses the payload's first newline: %s", body)
	}
	tok := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body)
	if tok == nil {
		t.Fatal("no csrf token on the edit page")
	}
	// a browser sends the text area back with CRLF newlines
	do("POST", "/edit", url.Values{"id": {"nl"}, "csrf": {tok[1]}, "payload": {"\r\nfirst line\r\nsecond, edited"}})
	do("POST", "/edit", url.Values{"id": {"crlf"}, "csrf": {tok[1]}, "payload": {"a\r\nb, edited"}})
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if want := []string{"\nfirst line\nsecond, edited", "a\r\nb, edited"}; strings.Join(pub.got, "|") != strings.Join(want, "|") {
		t.Errorf("published %q, want %q", pub.got, want)
	}
}

// TestRefusedEditLeavesTheLetterAsItWas: an edit the topic's schema
// refuses publishes nothing and changes nothing on the letter. Before, the
// letter's stored reason became the edit's schema error ("payload failed
// re-validation"), though its own payload was valid: the letter page then
// told the next operator that the letter's payload fails its schema.
func TestRefusedEditLeavesTheLetterAsItWas(t *testing.T) {
	f := newFixture(t)
	f.down.SetBroken(false)
	ctx := context.Background()
	before, err := f.store.Get(ctx, "Lb")
	if err != nil {
		t.Fatal(err)
	}
	rec := f.do("POST", "/edit", "alice", url.Values{"id": {"Lb"}, "csrf": {f.csrf("alice")}, "payload": {`{"nope":1}`}})
	if rec.Code != 422 || !strings.Contains(rec.Body.String(), "missing property id") {
		t.Fatalf("refused edit: got %d %s", rec.Code, rec.Body)
	}
	after, err := f.store.Get(ctx, "Lb")
	if err != nil {
		t.Fatal(err)
	}
	if after.Reason != before.Reason || after.Status != dlqops.StatusNew || f.down.Received() != 0 {
		t.Errorf("after a refused edit: reason %q (was %q), status %s, %d published; want the letter as it was", after.Reason, before.Reason, after.Status, f.down.Received())
	}
	if body := f.do("GET", "/letter?id=Lb", "alice", nil).Body.String(); strings.Contains(body, "re-validation") {
		t.Errorf("the letter page blames the letter's payload for the refused edit: %s", body)
	}
}
