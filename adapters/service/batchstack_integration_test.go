//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// bsYAML is a batch handler behind the whole canonical stack: recover,
// dlq, dedup, breaker, priority, a per-key rate limit and a timeout.
const bsYAML = `transport: %s
schedulers:
  gw: {slots: 32, max_waiting: 1000}
handlers:
  ledger:
    recover: true
    timeout: 1s
    dlq: {retry: {max_attempts: 5, initial: 20ms, max: 50ms}}
    dedup: {key: {metadata: order_id}, window: 5m}
    breaker: {consecutive_failures: 4, open_for: 300ms}
    priority: {scheduler: gw}
    ratelimit: {rate: 2000/s, burst: 100, max_wait: 100ms, key: {metadata: customer}, per_key: {rate: 40/s, burst: 4}}
    batch: {max_size: 8, max_wait: 50ms}
`

// bsKinds are the messages TestBatchBehindTheWholeStack publishes: ok
// ones over many customers, a hot customer above its per-key rate, flaky
// ones a first call fails (transient, named in the result), slow ones a
// first call outlasts the timeout with, poison ones (permanent) and
// panicking ones, and duplicates (a second UUID of an ok order).
var bsKinds = map[string]int{"ok": 60, "hot": 24, "flaky": 8, "slow": 2, "poison": 3, "panic": 2, "dup": 6}

type bsSink struct {
	mu      sync.Mutex
	written map[string]int  // order_id -> rows written
	tried   map[string]bool // order_ids a first call saw (flaky, slow)
	calls   int
	log     []string // the calls: start, duration, orders, result
}

// TestBatchBehindTheWholeStack counts every message of a batch handler
// behind the whole stack over every durable transport: each order is
// written exactly once (dedup) or dead-lettered with its own reason, and
// nothing else is in the dead-letter store.
func TestBatchBehindTheWholeStack(t *testing.T) {
	onEachTransport(t, 2, bsRun)
}

func (s *bsSink) fn(ctx context.Context, msgs []*message.Message) (err error) {
	start := time.Now()
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Metadata.Get("order_id"))
	}
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.log = append(s.log, fmt.Sprintf("%s %v %v %v", start.Format("05.000"), time.Since(start), ids, err))
	}()
	s.mu.Lock()
	s.calls++
	first := map[int]bool{}
	slow := false
	for i, m := range msgs {
		k := m.Metadata.Get("kind")
		if k == "panic" {
			s.mu.Unlock()
			panic("bad row")
		}
		if (k == "flaky" || k == "slow") && !s.tried[m.Metadata.Get("order_id")] {
			s.tried[m.Metadata.Get("order_id")] = true
			first[i] = true
			slow = slow || k == "slow"
		}
	}
	s.mu.Unlock()
	if slow {
		select { // a first call of a slow order outlasts the timeout
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	var errs batch.Errors
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range msgs {
		switch {
		case m.Metadata.Get("kind") == "poison":
			errs.Fail(i, dlq.Permanent(errors.New("bad row "+m.Metadata.Get("order_id"))))
		case first[i]:
			errs.Fail(i, errors.New("flaky"))
		default:
			s.written[m.Metadata.Get("order_id")]++
		}
	}
	if errs.Len() > 0 {
		return &errs
	}
	return nil
}

func bsRun(t *testing.T, transport string, settled func(t *testing.T)) {
	topic := brokertest.Name("svc_batch_stack")
	svc, closeSvc := newTopicService(t, fmt.Sprintf(bsYAML, transport), config.Deps{}, topic)
	defer closeSvc()
	res := &toResults{handler: "ledger", effects: map[string]int{}}
	svc.Router.AddMiddleware(res.track)
	sink := &bsSink{written: map[string]int{}, tried: map[string]bool{}}
	if err := svc.HandleBatch("ledger", topic, sink.fn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Running()
	if settled != nil {
		settled(t)
	}
	want := map[string]bool{} // order_ids to be written
	dead := map[string]string{}
	n := 0
	pub := func(kind, order, customer string) {
		m := message.NewMessage(watermill.NewUUID(), []byte(kind))
		m.Metadata.Set("kind", kind)
		m.Metadata.Set("order_id", order)
		m.Metadata.Set("customer", customer)
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	for kind, c := range bsKinds {
		for i := range c {
			n++
			order := kind + "-" + strconv.Itoa(i)
			customer := "c" + strconv.Itoa(n)
			switch kind {
			case "hot":
				customer = "hot"
			case "dup":
				order = "ok-" + strconv.Itoa(i) // a second UUID of an ok order
			}
			switch kind {
			case "poison":
				dead[order] = "permanent"
			case "panic":
				dead[order] = "panic"
			default:
				want[order] = true
			}
			pub(kind, order, customer)
		}
	}
	var letters []dlqops.Record
	var err error
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		letters, err = svc.Store.List(context.Background(), dlqops.Filter{})
		sink.mu.Lock()
		w := len(sink.written)
		sink.mu.Unlock()
		if err == nil && len(letters) >= len(dead) && w >= len(want) {
			break
		}
		if time.Now().After(end) {
			for _, l := range letters {
				t.Logf("letter %s: %s %s attempts %d: %s", l.Metadata["order_id"], l.Metadata["kind"], l.ErrorClass, l.Attempts, l.Error)
			}
			sink.mu.Lock()
			for _, l := range sink.log {
				t.Log(l)
			}
			sink.mu.Unlock()
			t.Fatalf("after 60 s: %d of %d orders written, %d of %d letters (%v); router %d ok, %d deferred, %d canceled, %d failed",
				w, len(want), len(letters), len(dead), err, res.ok, res.deferred, res.canceled, res.failed)
		}
	}
	time.Sleep(time.Second) // anything still on its way shows up now
	letters, err = svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range letters {
		got[l.Metadata["order_id"]] = l.ErrorClass
	}
	if fmt.Sprint(got) != fmt.Sprint(dead) {
		t.Errorf("dead letters by order: %v, want %v", got, dead)
	}
	sink.mu.Lock()
	for o := range want {
		if sink.written[o] != 1 {
			t.Errorf("order %s written %d times, want once", o, sink.written[o])
		}
	}
	for o, c := range sink.written {
		if !want[o] {
			t.Errorf("order %s written %d times, want never", o, c)
		}
	}
	calls := sink.calls
	sink.mu.Unlock()
	res.mu.Lock()
	t.Logf("%d messages, %d calls; router %d ok, %d deferred, %d canceled, %d failed",
		n, calls, res.ok, res.deferred, res.canceled, res.failed)
	if res.ok != n {
		t.Errorf("router acked %d deliveries, want one per message: %d", res.ok, n)
	}
	res.mu.Unlock()
	cancel()
	<-ran
}
