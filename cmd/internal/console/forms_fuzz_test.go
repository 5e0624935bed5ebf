package console

import (
	"math"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzForms feeds arbitrary query strings and form fields to the search
// and canary forms (the console answers any error of theirs with 400) and
// to the redirect after an archive:
// each is refused, or read into a query the stores accept and a plan with
// a finite, non-negative rate the replayer takes; the redirect stays on
// the console. The search form's values round-trip.
func FuzzForms(f *testing.F) {
	f.Add("orders", "new", "2026-01-02T03:04", "2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05Z", "dl-1", "1,5,10", "0.2", "5s", "10")
	f.Add("", "bogus", "yesterday", "", "", "x", "0", "1", "-1s", "-1")
	f.Add("t", "", "2026-01-02T03:04", "2026-01-01T03:04", "", "", "a,b", "NaN", "1h", "NaN")
	f.Add("t", "", "", "", "", "", "1", "0.1", "1s", "NaN")
	f.Add("t", "", "", "", "", "", "", "", "", "+Inf")
	f.Add("t", "archived", "", "", "nope", "", " 2 , 3 ", "+Inf", "9999999h", "+Inf")
	f.Add("\x00", "replayed", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00", "", "", "99999999999999999999", "1e-400", "", "1e400")
	f.Fuzz(func(t *testing.T, topic, status, since, until, beforeAt, beforeID, waves, ratio, wait, rate string) {
		form := searchForm{Topic: topic, Handler: topic, Group: topic, Class: topic, Text: topic, Status: status, Since: since, Until: until}
		pq, err := form.query()
		if err == nil {
			if verr := pq.Validate(); verr != nil {
				t.Fatalf("form %+v: query %+v the stores refuse: %v", form, pq, verr)
			}
		}
		back, _ := url.ParseQuery(form.values().Encode())
		if got := (searchForm{Topic: back.Get("topic"), Handler: back.Get("handler"), Group: back.Get("group"), Class: back.Get("class"),
			Text: back.Get("text"), Status: back.Get("status"), Since: back.Get("since"), Until: back.Get("until")}); got != form {
			t.Fatalf("values round trip: got %+v, want %+v", got, form)
		}
		if p := localPath(topic); p != "/" && (p != topic || strings.HasPrefix(strings.Map(dropControls, p), "//") || strings.Contains(p, "\\")) {
			t.Fatalf("back %q: redirect to %q", topic, p)
		}
		if c, err := parseCursor(beforeAt, beforeID); err == nil && c != nil && c.ID != beforeID {
			t.Fatalf("cursor %q %q: got %+v", beforeAt, beforeID, c)
		}

		body := url.Values{"waves": {waves}, "ratio": {ratio}, "wait": {wait}, "rate": {rate}}.Encode()
		r := httptest.NewRequest("POST", "/canary", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		plan, perSecond, err := (&Server{}).canaryForm(r)
		if err != nil {
			return
		}
		if math.IsNaN(perSecond) || math.IsInf(perSecond, 0) || perSecond < 0 {
			t.Fatalf("canary form %q: rate %v accepted", body, perSecond)
		}
		if _, err := plan.Validate(); err != nil || len(plan.Waves) == 0 || plan.Wait <= 0 {
			t.Fatalf("canary form %q: plan %+v accepted (%v)", body, plan, err)
		}
	})
}

// dropControls drops what a browser drops from a URL (tabs, newlines).
func dropControls(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}
