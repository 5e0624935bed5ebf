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
	"github.com/levee-dev/levee/internal/brokertest"
	amqp091 "github.com/rabbitmq/amqp091-go"
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

// TestCanaryStoppedDuringAStalledPublishSaysSo: RabbitMQ stops answering
// (a stall proxy holds back its replies, the publish goes through) during
// a canary's first publish, the operator stops the canary, and the
// network is cut (the publish waits for its confirm until the channel is
// lost, the stop notwithstanding). The publish ends unconfirmed: the letter stays new with that reason, and its
// replay may have reached the queue, so a later run sends it again. Before,
// the page said only "STOPPED by alice: the letters it did not replay stay
// new", hiding the unconfirmed publish that the letter's reason held.
func TestCanaryStoppedDuringAStalledPublishSaysSo(t *testing.T) {
	ctx := context.Background()
	amqpURL := brokertest.AMQPURL()
	brokertest.SkipIfDown(t, amqpURL)
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := brokertest.NewStallProxy(t, u.Host)
	u.Host = proxy.Addr()
	tr, err := adapters.Build(ctx, adapters.TransportConfig{Kind: adapters.KindAMQP, AMQP: &adapters.AMQPConfig{URL: u.String()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	topic := "consoleaudit_stall_" + brokertest.Suffix()
	t.Cleanup(func() {
		if conn, err := amqp091.Dial(amqpURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(topic, false, false, false)
			}
			_ = conn.Close()
		}
	})
	st := dlqops.NewMemStore()
	for i := range 3 {
		mustAdd(t, st, dlqtest.Letter(fmt.Sprintf("st-%d", i), "gst", topic, "ship", time.Duration(i)*time.Minute))
	}
	srv, err := New(Config{Users: []User{{Name: "alice", Password: "alice-secret", Role: RoleAdmin}},
		Canary: Canary{Waves: []int{3}, Wait: 300 * time.Millisecond}}, Deps{Store: st, Publisher: tr.Publisher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f := &fixture{t: t, store: st, srv: srv}
	tok := srv.csrfToken(principal{"alice", RoleAdmin})
	proxy.SetStall(true)
	rec := f.do("POST", "/canary", "alice", url.Values{"by": {"fingerprint"}, "key": {"gst"}, "csrf": {tok}})
	if rec.Code != 303 {
		t.Fatalf("start: got %d %s", rec.Code, rec.Body)
	}
	loc := rec.Header().Get("Location")
	time.Sleep(time.Second) // the first publish is out, its confirm held back
	run := strings.TrimPrefix(loc, "/canary?run=")
	if rec := f.do("POST", "/canary/stop", "alice", url.Values{"run": {run}, "csrf": {tok}}); rec.Code != 303 {
		t.Fatalf("stop: got %d %s", rec.Code, rec.Body)
	}
	// the stalled publish waits for its confirm whatever the stop (the
	// AMQP publisher waits until the channel is lost): cut the network
	proxy.Cut()
	var page string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		page = f.do("GET", loc, "alice", nil).Body.String()
		if strings.Contains(page, "STOPPED by alice") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	proxy.SetStall(false)
	if !strings.Contains(page, "STOPPED by alice") {
		t.Fatalf("the canary did not end: %s", page)
	}
	dl, _ := st.Get(ctx, "st-0")
	if dl.Status != dlqops.StatusNew || dl.Reason == "" {
		t.Fatalf("the letter whose publish was not confirmed: %s %q", dl.Status, dl.Reason)
	}
	if !strings.Contains(page, "st-0") || !strings.Contains(page, "publish failed") {
		t.Errorf("the stopped canary's page hides the unconfirmed publish (%q): %s", dl.Reason, page)
	}
}
