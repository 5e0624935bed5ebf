//go:build integration

package console

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestCanaryStopsOnALetterTheBrokerRefuses: a group with a 10 MB letter
// among small ones, canary-replayed through real NATS (max_payload 1 MB):
// the broker refuses that letter's replay, the run stops, and the canary
// page names the letter (before, it said only "replay publish failed to
// "orders"", and the operator had to search the group for the letter that
// keeps every later canary stopping at it). The letter stays new with the
// reason, and the letters after it stay new, untouched.
func TestCanaryStopsOnALetterTheBrokerRefuses(t *testing.T) {
	ctx := context.Background()
	tr, err := adapters.Build(ctx, adapters.TransportConfig{Kind: adapters.KindNATS, NATS: &adapters.NATSConfig{URL: "nats://127.0.0.1:4222"}}, nil)
	if err != nil {
		t.Skipf("NATS: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	topic := fmt.Sprintf("consoleaudit_big_%d", time.Now().UnixNano())
	st := dlqops.NewMemStore()
	for i := range 4 {
		dl := dlqtest.Letter(fmt.Sprintf("big-%d", i), "gbig", topic, "ship", time.Duration(i)*time.Minute)
		dl.Payload = []byte(fmt.Sprintf(`{"id":%d}`, i))
		if i == 1 {
			dl.Payload = bytes.Repeat([]byte("x"), 10<<20)
		}
		mustAdd(t, st, dl)
	}
	srv, err := New(Config{Users: []User{{Name: "alice", Password: "alice-secret", Role: RoleAdmin}},
		Canary: Canary{Waves: []int{1, 2}, Wait: 300 * time.Millisecond}}, Deps{Store: st, Publisher: tr.Publisher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f := &fixture{t: t, store: st, srv: srv}
	tok := srv.csrfToken(principal{"alice", RoleAdmin})
	rec := f.do("POST", "/canary", "alice", url.Values{"by": {"fingerprint"}, "key": {"gbig"}, "csrf": {tok}})
	if rec.Code != 303 {
		t.Fatalf("start: got %d %s", rec.Code, rec.Body)
	}
	loc := rec.Header().Get("Location")
	var page string
	waitFor(t, "the canary to stop", func() bool {
		page = f.do("GET", loc, "alice", nil).Body.String()
		return strings.Contains(page, "STOPPED")
	})
	if !strings.Contains(page, "big-1") {
		t.Errorf("the stopped canary's page does not name the letter the broker refused: %s", page)
	}
	dl, err := st.Get(ctx, "big-1")
	if err != nil || dl.Status != dlqops.StatusNew || !strings.Contains(dl.Reason, "publish failed") {
		t.Errorf("the refused letter: %v %s %q, want new with the publish error", err, dl.Status, dl.Reason)
	}
	for _, id := range []string{"big-2", "big-3"} {
		if dl, _ := st.Get(ctx, id); dl.Status != dlqops.StatusNew {
			t.Errorf("%s: %s, want new (after the stop)", id, dl.Status)
		}
	}
}
