package telemetrytest_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	lv "github.com/levee-dev/levee"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
)

// documentedEvents parses every span event table of docs/TELEMETRY.md
// (a header starting "| event |"): event name to the attribute keys its
// attributes column names (backticked, outside parentheses).
func documentedEvents(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	col := -1
	name := regexp.MustCompile("^`([a-z_.]+)`")
	key := regexp.MustCompile("`([a-z_.]+)`")
	paren := regexp.MustCompile(`\([^)]*\)`)
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "|") {
			col = -1
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] == "event" {
			for i, c := range cells {
				if c == "attributes" {
					col = i
				}
			}
			continue
		}
		m := name.FindStringSubmatch(cells[0])
		if col < 0 || m == nil || col >= len(cells) {
			continue
		}
		var keys []string
		for _, k := range key.FindAllStringSubmatch(paren.ReplaceAllString(cells[col], ""), -1) {
			keys = append(keys, k[1])
		}
		if prev, ok := out[m[1]]; ok && strings.Join(prev, ",") != strings.Join(keys, ",") {
			t.Errorf("docs/TELEMETRY.md lists event %s twice, with attributes %v and %v", m[1], prev, keys)
		}
		out[m[1]] = keys
	}
	if len(out) < 9 {
		t.Fatalf("parsed only %d span events from docs/TELEMETRY.md: %v", len(out), out)
	}
	return out
}

type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

// emitEvery drives one traced delivery through each situation that adds a
// span event, and returns the events seen: name to attribute keys.
func emitEvery(t *testing.T) map[string]map[string]bool {
	s := newSDK(t)
	tr, err := tracing.New(tracing.WithTracerProvider(s.tp))
	if err != nil {
		t.Fatal(err)
	}
	ok := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	call := func(h message.HandlerFunc) { _, _ = tr.Middleware(h)(message.NewMessage("u", nil)) }
	synctest.Test(t, func(t *testing.T) {
		// dlq: a retry, then a permanent failure dead-lettered.
		d, err := dlq.New(nopPublisher{}, dlq.WithTopic("orders.dlq"),
			dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 2}))
		if err != nil {
			t.Fatal(err)
		}
		call(d.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("down") }))
		// dlq: a deferral waited in process (within its max hold).
		dh, err := dlq.New(nopPublisher{}, dlq.WithTopic("orders.dlq"), dlq.WithMaxHold(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		deferred := false
		call(dh.Middleware(func(*message.Message) ([]*message.Message, error) {
			if !deferred {
				deferred = true
				return nil, lv.Defer(10*time.Millisecond, errors.New("not now"))
			}
			return nil, nil
		}))
		// breaker: a wait bounded by max hold, and a drain token.
		br, err := breaker.New(breaker.WithMaxHold(time.Millisecond), breaker.WithDrain(time.Hour, 0.1, 1), breaker.WithDrainRate(20))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = br.Close() }()
		br.ForceOpen()
		call(br.Middleware(ok))
		br.ClearForce()
		call(br.Middleware(ok))
		call(br.Middleware(ok))
		// priority: a wait for the one slot, and a rejection at max wait.
		sc, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sc.Close() }()
		_ = sc.Acquire(context.Background(), priority.MinPriority)
		var wg sync.WaitGroup
		wg.Go(func() { call(sc.Middleware(ok)) })
		time.Sleep(500 * time.Millisecond)
		sc.Release()
		wg.Wait()
		_ = sc.Acquire(context.Background(), priority.MinPriority)
		call(sc.Middleware(ok))
		sc.Release()
		// ratelimit: the second message waits for its token.
		rl, err := ratelimit.New(ratelimit.WithRate(2), ratelimit.WithBurst(1))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rl.Close() }()
		call(rl.Middleware(ok))
		call(rl.Middleware(ok))
		// dedup: a duplicate of a done identity, and one in progress.
		dd, err := dedup.New(dedup.WithBusyRetry(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		call(dd.Middleware(ok))
		call(dd.Middleware(ok))
		hold := make(chan struct{})
		var held sync.WaitGroup
		held.Go(func() {
			_, _ = dd.Middleware(func(*message.Message) ([]*message.Message, error) { <-hold; return nil, nil })(message.NewMessage("held", nil))
		})
		synctest.Wait()
		_, _ = tr.Middleware(dd.Middleware(ok))(message.NewMessage("held", nil))
		close(hold)
		held.Wait()
		// batch, and a malformed traceparent.
		bt, err := batch.New(func(context.Context, []*message.Message) error { return nil }, batch.WithMaxSize(1), batch.WithTracerProvider(s.tp))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = bt.Close() }()
		call(bt.Handler)
		bad := message.NewMessage("u", nil)
		bad.Metadata.Set(tracing.KeyTraceparent, "garbage")
		_, _ = tr.Middleware(ok)(bad)
	})
	seen := map[string]map[string]bool{}
	for _, sp := range s.spans.Ended() {
		for _, e := range sp.Events() {
			if seen[e.Name] == nil {
				seen[e.Name] = map[string]bool{}
			}
			for _, kv := range e.Attributes {
				seen[e.Name][string(kv.Key)] = true
			}
		}
	}
	return seen
}

// TestDocumentedSpanEventsAreEmitted: every span event docs/TELEMETRY.md
// lists is added to the consumer span, with every attribute it lists, and
// every levee event added is listed.
func TestDocumentedSpanEventsAreEmitted(t *testing.T) {
	docs := documentedEvents(t)
	seen := emitEvery(t)
	for ev, keys := range docs {
		got, ok := seen[ev]
		if !ok {
			t.Errorf("documented event %s was never added; events seen: %v", ev, seen)
			continue
		}
		for _, k := range keys {
			if !got[k] {
				t.Errorf("event %s: documented attribute %s missing; it has %v", ev, k, got)
			}
		}
	}
	for ev := range seen {
		if _, ok := docs[ev]; !ok && ev != "exception" {
			t.Errorf("event %s is added but not documented in docs/TELEMETRY.md", ev)
		}
	}
}
