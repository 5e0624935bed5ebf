//go:build integration

package adapters_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/ratelimit"
)

// TestScenarios is Levee's own scenario suite, run on every transport by
// one table: a poison message is dead-lettered with its keys, a breaker
// outage gives no redelivery storm and no loss, a batch with a partial
// failure dead-letters only the failed message, a panic in a batch func
// dead-letters only the message that panics, and a rate-limited
// consumer holds its rate. (Priority order under load is
// TestPriorityOverTransports.) Each subtest builds its own transport,
// consumer group and topics, so runs never see each other's messages.
func TestScenarios(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, tc transportCase)
	}{
		{"poison", scenarioPoison},
		{"breaker_outage", scenarioBreakerOutage},
		{"batch_partial_failure", scenarioBatchPartialFailure},
		{"batch_panic", scenarioBatchPanic},
		{"ratelimit", scenarioRateLimit},
	}
	// The transports run at the same time, each its scenarios in turn.
	cases := transportCases(t)
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) { sc.run(t, cases[i]) })
		}
	})
}

// scenarioTimeout bounds every wait of the suite.
const scenarioTimeout = 30 * time.Second

// scenarioConcurrency is the consumer concurrency of a scenario: 8, or 4
// on PostgreSQL where every in-flight message holds a connection.
func scenarioConcurrency(tc transportCase) int {
	if tc.name == "postgres" {
		return 4
	}
	return 8
}

// scenarioTransport builds a transport with the given concurrency and, on
// transports with consumer groups, a group of its own.
func scenarioTransport(t *testing.T, tc transportCase, concurrency int) *adapters.Transport {
	t.Helper()
	group := tc.group
	if group != "" {
		group = "scenario-" + watermill.NewShortUUID()
	}
	return newTransport(t, tc, group, adapters.WithConcurrency(concurrency))
}

// scenarioTopic returns a topic unique to this run.
func scenarioTopic(name string) string {
	return "levee_scen_" + name + "_" + strings.ToLower(watermill.NewShortUUID())
}

// scenarioRun starts the router and stops it when the test ends (before
// anything registered with t.Cleanup earlier is closed).
func scenarioRun(t *testing.T, router *message.Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-router.Running():
	case <-time.After(scenarioTimeout):
		t.Fatal("router did not start")
	}
}

// scenarioHandler turns a consumer func into a message.HandlerFunc.
func scenarioHandler(h func(*message.Message) error) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) { return nil, h(msg) }
}

// scenarioConsumer turns a message.HandlerFunc into a consumer func.
func scenarioConsumer(h message.HandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		_, err := h(msg)
		return err
	}
}

func scenarioRouter(t *testing.T) *message.Router {
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
	require.NoError(t, err)
	return router
}

// scenarioPayload is a binary payload (NUL, 0xff, invalid UTF-8) so the
// dead letter's byte-for-byte check means something on every transport.
func scenarioPayload(i int) []byte {
	return append([]byte{0x00, 0xff, 0xfe, 'o', 'r', 'd', 'e', 'r', '-', 0xc3, 0x28}, strconv.Itoa(i)...)
}

// scenarioSet records message UUIDs with how often each was seen.
type scenarioSet struct {
	mu   sync.Mutex
	seen map[string]int
	msgs map[string]*message.Message
}

func newScenarioSet() *scenarioSet {
	return &scenarioSet{seen: map[string]int{}, msgs: map[string]*message.Message{}}
}

// add records key (with msg, kept from the first sighting) and returns the
// number of distinct keys.
func (s *scenarioSet) add(key string, msg *message.Message) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[key] == 0 && msg != nil {
		s.msgs[key] = msg.Copy()
	}
	s.seen[key]++
	return len(s.seen)
}

func (s *scenarioSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *scenarioSet) snapshot() (map[string]int, map[string]*message.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]int, len(s.seen))
	msgs := make(map[string]*message.Message, len(s.msgs))
	for k, v := range s.seen {
		seen[k] = v
	}
	for k, v := range s.msgs {
		msgs[k] = v
	}
	return seen, msgs
}

// scenarioWait polls cond until it holds or scenarioTimeout passes.
func scenarioWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(scenarioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scenarioCollectDeadLetters consumes dlqTopic on the router and records
// every dead letter by its levee_original_uuid.
func scenarioCollectDeadLetters(router *message.Router, sub message.Subscriber, dlqTopic string, into *scenarioSet) {
	router.AddConsumerHandler("dead_letters_"+dlqTopic, dlqTopic, sub, func(msg *message.Message) error {
		into.add(msg.Metadata.Get(dlq.KeyOriginalUUID), msg)
		return nil
	})
}

// scenarioCheckDeadLetter asserts the Levee failure keys of one dead
// letter against the message that was published.
func scenarioCheckDeadLetter(t *testing.T, dl, sent *message.Message, topic, handler, class string) {
	t.Helper()
	md := dl.Metadata
	require.Equal(t, class, md.Get(dlq.KeyErrorClass), "error class")
	require.Equal(t, topic, md.Get(dlq.KeyOriginalTopic), "original topic")
	require.Equal(t, topic+".dlq", md.Get(dlq.KeyDLQTopic), "dlq topic")
	require.Equal(t, handler, md.Get(dlq.KeyHandler), "handler")
	require.Equal(t, sent.UUID, md.Get(dlq.KeyOriginalUUID), "original uuid")
	fp := md.Get(dlq.KeyFingerprint)
	_, err := hex.DecodeString(fp)
	require.True(t, len(fp) == 16 && err == nil, "fingerprint %q is not 16 hex digits", fp)
	attempts, ok := dlq.ParseCount(md.Get(dlq.KeyAttempts))
	require.True(t, ok && attempts >= 1, "attempts %q", md.Get(dlq.KeyAttempts))
	require.True(t, bytes.Equal(sent.Payload, dl.Payload), "payload changed: sent %x, dead letter %x", sent.Payload, dl.Payload)
}

// scenarioPoison: messages whose handler returns dlq.Permanent go to
// <topic>.dlq with the Levee keys and the payload unchanged; the good ones
// are processed; processed + dead-lettered = sent.
func scenarioPoison(t *testing.T, tc transportCase) {
	const total, every = 20, 5 // messages 0, 5, 10, 15 are poison
	tr := scenarioTransport(t, tc, scenarioConcurrency(tc))
	topic := scenarioTopic("poison")
	dlqTopic := topic + ".dlq"

	d, err := dlq.New(tr.Publisher)
	require.NoError(t, err)
	router := scenarioRouter(t)
	processed, dead := newScenarioSet(), newScenarioSet()
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)
	router.AddConsumerHandler("poison", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(scenarioHandler(func(msg *message.Message) error {
		if msg.Metadata.Get("poison") == "1" {
			return dlq.Permanent(fmt.Errorf("order %s: unknown currency", msg.UUID))
		}
		processed.add(msg.UUID, nil)
		return nil
	}))))
	scenarioCollectDeadLetters(router, tr.Subscriber, dlqTopic, dead)
	scenarioRun(t, router)

	sent := map[string]*message.Message{}
	poison := 0
	for i := 0; i < total; i++ {
		m := message.NewMessage(watermill.NewUUID(), scenarioPayload(i))
		if i%every == 0 {
			m.Metadata.Set("poison", "1")
			poison++
		}
		sent[m.UUID] = m.Copy()
		require.NoError(t, tr.Publisher.Publish(topic, m))
	}
	scenarioWait(t, "every message processed or dead-lettered", func() bool {
		return processed.len() == total-poison && dead.len() == poison
	})

	seen, _ := processed.snapshot()
	deadSeen, deadMsgs := dead.snapshot()
	for id := range seen {
		require.Contains(t, sent, id)
		require.Empty(t, sent[id].Metadata.Get("poison"), "a poison message was processed")
		require.NotContains(t, deadSeen, id, "message both processed and dead-lettered")
	}
	for id, dl := range deadMsgs {
		require.Contains(t, sent, id, "dead letter for a message not sent")
		require.Equal(t, "1", sent[id].Metadata.Get("poison"), "a good message was dead-lettered")
		scenarioCheckDeadLetter(t, dl, sent[id], topic, "poison", string(dlq.ClassPermanent))
	}
	require.Equal(t, total, len(seen)+len(deadSeen), "processed + dead-lettered = sent")
}

// scenarioBreakerOutage: the downstream fails for a window; the breaker
// trips and holds the messages instead of letting the transport redeliver
// them in a loop; after recovery every message is processed.
func scenarioBreakerOutage(t *testing.T, tc transportCase) {
	const (
		total   = 40
		outage  = time.Second
		openFor = 300 * time.Millisecond
	)
	conc := scenarioConcurrency(tc)
	tr := scenarioTransport(t, tc, conc)
	topic := scenarioTopic("outage")

	// Max hold below the ack deadline (or 2s where there is none), above
	// the outage, so a held message normally outlasts the outage.
	maxHold := 2 * time.Second
	if dl := tr.Capabilities.AckDeadline; dl > 0 && dl/2 < maxHold {
		maxHold = dl / 2
	}
	var opened atomic.Int64
	brk, err := breaker.New(
		breaker.WithOnStateChange(func(_, to breaker.State) {
			if to == breaker.StateOpen {
				opened.Add(1)
			}
		}),
		breaker.WithConsecutiveFailures(3),
		breaker.WithOpenFor(openFor),
		breaker.WithMaxHold(maxHold),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = brk.Close() })

	var (
		deliveries, failures atomic.Int64
		outageEnd            atomic.Int64 // unix nanos
	)
	processed := newScenarioSet()
	inner := func(msg *message.Message) error {
		time.Sleep(2 * time.Millisecond)
		if time.Now().UnixNano() < outageEnd.Load() {
			failures.Add(1)
			return errors.New("downstream unavailable")
		}
		processed.add(msg.UUID, nil)
		return nil
	}
	stack := middleware.NewStack().Recover(middleware.Recover).Breaker(brk.Middleware)
	h := scenarioConsumer(stack.Middleware(scenarioHandler(inner)))
	router := scenarioRouter(t)
	// Deliveries are counted at the router, outside every middleware.
	router.AddConsumerHandler("outage", topic, tr.Subscriber, func(msg *message.Message) error {
		deliveries.Add(1)
		return h(msg)
	})
	scenarioRun(t, router)

	start := time.Now()
	outageEnd.Store(start.Add(outage).UnixNano())
	for i := 0; i < total; i++ {
		require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), scenarioPayload(i))))
	}
	scenarioWait(t, "every message processed after the outage", func() bool { return processed.len() == total })
	elapsed := time.Since(start)
	// Let any late redelivery show up in the count before reading it.
	time.Sleep(200 * time.Millisecond)

	// Without the breaker every failure is a Nack and an immediate
	// redelivery, as fast as the transport turns it around (thousands in
	// a 1s outage). With it: each message once, plus the deliveries that
	// failed: up to `conc` in the handler when it tripped, and about one
	// probe per open_for during the outage; a little slack on top.
	bound := int64(total + 2*conc + int(outage/openFor) + 4)
	t.Logf("%s: %d sent, %d deliveries (bound %d), %d failures, breaker opened %d times, all processed after %v (max hold %v)",
		tc.name, total, deliveries.Load(), bound, failures.Load(), opened.Load(), elapsed.Round(time.Millisecond), maxHold)
	require.GreaterOrEqual(t, failures.Load(), int64(3), "the outage never reached the handler")
	require.GreaterOrEqual(t, opened.Load(), int64(1), "the breaker never opened")
	require.LessOrEqual(t, deliveries.Load(), bound, "redelivery storm")
	require.Equal(t, breaker.StateClosed, brk.State(), "breaker state after recovery")
}

// scenarioBatchPartialFailure: a batch func fails one message by index;
// behind dlq it is retried (alone, in later batches) and then dead-lettered
// as exhausted, while every other message is processed exactly once.
func scenarioBatchPartialFailure(t *testing.T, tc transportCase) {
	const total, failing = 24, 10
	conc := scenarioConcurrency(tc)
	tr := scenarioTransport(t, tc, conc)
	topic := scenarioTopic("batch")
	dlqTopic := topic + ".dlq"

	var maxBatch atomic.Int64
	processed, dead := newScenarioSet(), newScenarioSet()
	var failedAttempts atomic.Int64
	b, err := batch.New(func(_ context.Context, msgs []*message.Message) error {
		if n := int64(len(msgs)); n > maxBatch.Load() {
			maxBatch.Store(n) // only the max is logged; races are harmless
		}
		errs := &batch.Errors{}
		for i, m := range msgs {
			if m.Metadata.Get("fail") == "1" {
				failedAttempts.Add(1)
				errs.Fail(i, fmt.Errorf("row %d rejected by the warehouse", i))
				continue
			}
			processed.add(m.UUID, nil)
		}
		if errs.Len() > 0 {
			return errs
		}
		return nil
	}, batch.WithMaxSize(conc), batch.WithMaxWait(50*time.Millisecond), batch.WithConcurrency(conc))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })

	const attempts = 3
	d, err := dlq.New(tr.Publisher, dlq.WithBackoff(dlq.Backoff{
		Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2, MaxAttempts: attempts,
	}))
	require.NoError(t, err)
	router := scenarioRouter(t)
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)
	router.AddConsumerHandler("batch", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(b.Handler)))
	scenarioCollectDeadLetters(router, tr.Subscriber, dlqTopic, dead)
	scenarioRun(t, router)

	sent := map[string]*message.Message{}
	var failed *message.Message
	for i := 0; i < total; i++ {
		m := message.NewMessage(watermill.NewUUID(), scenarioPayload(i))
		if i == failing {
			m.Metadata.Set("fail", "1")
			failed = m.Copy()
		}
		sent[m.UUID] = m.Copy()
		require.NoError(t, tr.Publisher.Publish(topic, m))
	}
	scenarioWait(t, "N-1 processed and one dead-lettered", func() bool {
		return processed.len() == total-1 && dead.len() == 1
	})
	// Let any duplicate show up before counting.
	time.Sleep(300 * time.Millisecond)

	seen, _ := processed.snapshot()
	for id, n := range seen {
		require.Contains(t, sent, id)
		require.NotEqual(t, failed.UUID, id, "the failed message was processed")
		require.Equal(t, 1, n, "message %s processed %d times", id, n)
	}
	require.Len(t, seen, total-1)
	deadSeen, deadMsgs := dead.snapshot()
	require.Equal(t, map[string]int{failed.UUID: 1}, deadSeen, "dead letters")
	dl := deadMsgs[failed.UUID]
	scenarioCheckDeadLetter(t, dl, failed, topic, "batch", string(dlq.ClassExhausted))
	n, _ := dlq.ParseCount(dl.Metadata.Get(dlq.KeyAttempts))
	require.GreaterOrEqual(t, n, attempts, "attempts before dead-lettering")
	require.GreaterOrEqual(t, failedAttempts.Load(), int64(attempts), "retries of the failed message")
	t.Logf("%s: largest batch %d, failed message tried %d times, dead letter attempts %s",
		tc.name, maxBatch.Load(), failedAttempts.Load(), dl.Metadata.Get(dlq.KeyAttempts))
}

// scenarioBatchPanic: a batch func panics whenever its batch holds one
// poison message. Behind recover and dlq only the poison is dead-lettered
// (class panic, with its stack) and every other message is written
// exactly once; before, the panic failed the whole batch and its healthy
// neighbours were dead-lettered with it.
func scenarioBatchPanic(t *testing.T, tc transportCase) {
	const total, poison = 24, 10
	conc := scenarioConcurrency(tc)
	tr := scenarioTransport(t, tc, conc)
	topic := scenarioTopic("bpanic")
	dlqTopic := topic + ".dlq"

	var maxBatch, panics atomic.Int64
	processed, dead := newScenarioSet(), newScenarioSet()
	b, err := batch.New(func(_ context.Context, msgs []*message.Message) error {
		if n := int64(len(msgs)); n > maxBatch.Load() {
			maxBatch.Store(n) // only the max is logged; races are harmless
		}
		for _, m := range msgs {
			if m.Metadata.Get("poison") == "1" {
				panics.Add(1)
				panic("unparseable row")
			}
		}
		for _, m := range msgs {
			processed.add(m.UUID, nil) // written only by a call that does not panic
		}
		return nil
	}, batch.WithMaxSize(conc), batch.WithMaxWait(50*time.Millisecond), batch.WithConcurrency(conc))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })

	d, err := dlq.New(tr.Publisher)
	require.NoError(t, err)
	router := scenarioRouter(t)
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)
	router.AddConsumerHandler("batch", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(b.Handler)))
	scenarioCollectDeadLetters(router, tr.Subscriber, dlqTopic, dead)
	scenarioRun(t, router)

	sent := map[string]*message.Message{}
	var bad *message.Message
	for i := 0; i < total; i++ {
		m := message.NewMessage(watermill.NewUUID(), scenarioPayload(i))
		if i == poison {
			m.Metadata.Set("poison", "1")
			bad = m.Copy()
		}
		sent[m.UUID] = m.Copy()
		require.NoError(t, tr.Publisher.Publish(topic, m))
	}
	scenarioWait(t, "N-1 processed and one dead-lettered", func() bool {
		return processed.len() == total-1 && dead.len() >= 1
	})
	// Let any duplicate or late dead letter show up before counting.
	time.Sleep(300 * time.Millisecond)

	seen, _ := processed.snapshot()
	for id, n := range seen {
		require.Contains(t, sent, id)
		require.NotEqual(t, bad.UUID, id, "the poison message was processed")
		require.Equal(t, 1, n, "message %s processed %d times", id, n)
	}
	require.Len(t, seen, total-1)
	deadSeen, deadMsgs := dead.snapshot()
	require.Equal(t, map[string]int{bad.UUID: 1}, deadSeen, "dead letters")
	dl := deadMsgs[bad.UUID]
	scenarioCheckDeadLetter(t, dl, bad, topic, "batch", string(dlq.ClassPanic))
	require.Equal(t, "levee: panic: unparseable row", dl.Metadata.Get(dlq.KeyError))
	require.NotEmpty(t, dl.Metadata.Get(dlq.KeyStack), "the panic's stack")
	t.Logf("%s: largest batch %d, calls that panicked %d", tc.name, maxBatch.Load(), panics.Load())
}

// scenarioRateLimit: a consumer with concurrency behind ratelimit at
// 50/s handles messages at about 50/s, not at the transport's speed.
func scenarioRateLimit(t *testing.T, tc transportCase) {
	const (
		total = 60
		rate  = 50.0
	)
	conc := scenarioConcurrency(tc)
	tr := scenarioTransport(t, tc, conc)
	topic := scenarioTopic("rate")

	lim, err := ratelimit.New(ratelimit.WithRate(rate))
	require.NoError(t, err)
	t.Cleanup(func() { _ = lim.Close() })

	var (
		mu          sync.Mutex
		first, last time.Time
	)
	processed := newScenarioSet()
	router := scenarioRouter(t)
	stack := middleware.NewStack().Recover(middleware.Recover).RateLimit(lim.Middleware)
	router.AddConsumerHandler("rate", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(scenarioHandler(func(msg *message.Message) error {
		now := time.Now()
		mu.Lock()
		if first.IsZero() {
			first = now
		}
		last = now
		mu.Unlock()
		processed.add(msg.UUID, nil)
		return nil
	}))))
	scenarioRun(t, router)

	for i := 0; i < total; i++ {
		require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), scenarioPayload(i))))
	}
	scenarioWait(t, "every message processed", func() bool { return processed.len() == total })

	mu.Lock()
	elapsed := last.Sub(first)
	mu.Unlock()
	// The rate is measured inside the limiter, from the first handler call
	// to the last: total calls span total-1 intervals (burst 1: the first
	// permit is free).
	got := float64(total-1) / elapsed.Seconds()
	t.Logf("%s: %d messages in %v: %.1f/s (limit %.0f/s, concurrency %d)", tc.name, total, elapsed.Round(time.Millisecond), got, rate, conc)
	require.LessOrEqual(t, got, rate*1.1, "rate limit exceeded")
	require.GreaterOrEqual(t, got, rate*0.5, "far below the rate limit")
}
