//go:build integration

package adapters_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// sdCloseWithin bounds the router's Close with messages held everywhere:
// below the router's CloseTimeout (10 s), which would mean a wait that
// did not end with the subscription.
const sdCloseWithin = 8 * time.Second

// sdHeld is one place of the stack where a message can be held.
type sdHeld struct {
	name  string
	msgs  int                 // published to this place's topic
	held  func(e *sdEnv) bool // every message is where it should be
	stack func(e *sdEnv) *middleware.Stack
	batch bool // the innermost handler is a batcher
}

// sdEnv is one transport's run: the concerns of the first consumer and
// what the test saw.
type sdEnv struct {
	t        *testing.T
	prefix   string // of the run's topics
	tr       *adapters.Transport
	store    dedup.Store
	b        *breaker.Breaker
	s        *priority.Scheduler
	l        *ratelimit.Limiter
	batchers []*batch.Batcher
	firstTr  *adapters.Transport     // the first consumer's (tr is the second's once it runs)
	group    string                  // the consumer group of both consumers
	n        int                     // sdPlaces(n)
	metrics  *sdkmetric.ManualReader // of the first consumer's breaker and scheduler
	calls    atomic.Int64            // failing handler calls (the dlq backoff place)
	inFlight sync.Map                // topic -> *atomic.Int64, deliveries in the stack
	mu       sync.Mutex
	done     map[string]string // UUID -> the consumer whose handler succeeded first
	acked    map[string]bool   // UUIDs the first router acked
}

func (e *sdEnv) succeed(who string) func(*message.Message) {
	return func(msg *message.Message) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.done[msg.UUID]; !ok {
			e.done[msg.UUID] = who
		}
	}
}

func (e *sdEnv) flight(topic string) *atomic.Int64 {
	v, _ := e.inFlight.LoadOrStore(topic, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// topic is the run's topic of a place.
func (e *sdEnv) topic(place string) string { return e.prefix + place }

// sdBase is the outer part of every place's stack, the dlq (in-process
// backoff of 10 minutes) and dedup on the shared store with a 10 minute
// lease: a claim left behind would hold the redelivery that long.
func sdBase(e *sdEnv, place string) *middleware.Stack {
	topic := e.topic(place)
	d, err := dlq.New(e.tr.Publisher, dlq.WithTopic(topic+".dlq"), dlq.WithMaxHold(time.Hour),
		dlq.WithBackoff(dlq.Backoff{Initial: 10 * time.Minute, Max: 10 * time.Minute, Multiplier: 1, MaxAttempts: 3}))
	require.NoError(e.t, err)
	dd, err := dedup.New(dedup.WithStore(e.store), dedup.WithLease(10*time.Minute), dedup.WithNamespace("sd"))
	require.NoError(e.t, err)
	return middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Dedup(dd.Middleware)
}

// sdPlaces are the places a message waits in: an open breaker (forced,
// no max hold), a priority queue behind a slot whose holder is running
// (and holds its dedup claim), a rate-limit wait for a token (the burst
// went to the first message; one token per 10 minutes, so the wait fits
// in the dlq's 1 hour max hold and is not deferred), a dlq backoff between attempts, an open
// batch. n is the messages published to each place's topic (0: the
// fewest that show the place) and k the deliveries held at once: the
// transport's concurrency, 4.
func sdPlaces(n int) []sdHeld {
	msgs := func(fewest int) int { return max(n, fewest) }
	in := func(m int) int64 { return int64(min(m, 4)) }
	return []sdHeld{
		{name: "breaker", msgs: msgs(2), held: func(e *sdEnv) bool { return e.flight("breaker").Load() == in(msgs(2)) },
			stack: func(e *sdEnv) *middleware.Stack { return sdBase(e, "breaker").Breaker(e.b.Middleware) }},
		{name: "priority", msgs: msgs(3), held: func(e *sdEnv) bool {
			st := e.s.Stats()
			return st.InUse == 1 && int64(st.Waiting) == in(msgs(3))-1
		}, stack: func(e *sdEnv) *middleware.Stack { return sdBase(e, "priority").Priority(e.s.Middleware) }},
		{name: "ratelimit", msgs: msgs(3), held: func(e *sdEnv) bool {
			return e.count("first:ratelimit") >= 1 && e.flight("ratelimit").Load() >= min(in(msgs(3)-1), 3)
		}, stack: func(e *sdEnv) *middleware.Stack { return sdBase(e, "ratelimit").RateLimit(e.l.Middleware) }},
		{name: "dlq", msgs: msgs(2), held: func(e *sdEnv) bool {
			return e.flight("dlq").Load() == in(msgs(2)) && e.calls.Load() >= in(msgs(2))
		}, stack: func(e *sdEnv) *middleware.Stack { return sdBase(e, "dlq") }},
		{name: "batch", msgs: msgs(2), batch: true, held: func(e *sdEnv) bool { return e.flight("batch").Load() == in(msgs(2)) },
			stack: func(e *sdEnv) *middleware.Stack { return sdBase(e, "batch") }},
	}
}

// count is how many messages the handler who ("first:<place>" or
// "second:<place>") processed first.
func (e *sdEnv) count(who string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, by := range e.done {
		if by == who {
			n++
		}
	}
	return n
}

// handler is the innermost handler of place p in the first consumer.
func (e *sdEnv) handler(p sdHeld) message.HandlerFunc {
	first := e.succeed("first:" + p.name)
	switch {
	case p.batch:
		bt, err := batch.New(func(_ context.Context, msgs []*message.Message) error {
			for _, m := range msgs {
				first(m)
			}
			return nil
		}, batch.WithMaxWait(10*time.Minute), batch.WithMaxSize(100))
		require.NoError(e.t, err)
		e.batchers = append(e.batchers, bt)
		return bt.Handler
	case p.name == "dlq":
		return func(*message.Message) ([]*message.Message, error) {
			e.calls.Add(1)
			return nil, errors.New("downstream down") // transient: retried after the backoff
		}
	case p.name == "priority":
		return func(msg *message.Message) ([]*message.Message, error) {
			<-msg.Context().Done() // holds the slot and the dedup claim
			return nil, msg.Context().Err()
		}
	}
	return func(msg *message.Message) ([]*message.Message, error) { first(msg); return nil, nil }
}

// add registers place p's handler on router, counting its deliveries in
// flight and the ones the router acks.
func (e *sdEnv) add(router *message.Router, p sdHeld) {
	h := p.stack(e).Middleware(e.handler(p))
	flight := e.flight(p.name)
	router.AddConsumerHandler(p.name, e.topic(p.name), e.tr.Subscriber, func(msg *message.Message) error {
		flight.Add(1)
		defer flight.Add(-1)
		_, err := h(msg)
		if err == nil {
			e.mu.Lock()
			e.acked[msg.UUID] = true
			e.mu.Unlock()
		}
		return err
	})
}

// TestShutdownHandsBackHeldMessages: with messages held in every place of
// the canonical stack at once (an open breaker, a priority queue and the
// slot's running holder, a rate-limit wait, a dlq backoff, an open batch;
// dedup claims on a shared Redis store), the router's Close returns within
// a few seconds, no held message is acked, the concerns hold nothing
// afterwards, and a second consumer on the same group handles every
// message: the claims of the held messages were released (a claim left
// behind would defer the redelivery for its 10 minute lease). On every
// transport; GoChannel is not durable across subscribers, so only the
// first part runs there.
func TestShutdownHandsBackHeldMessages(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = client.Close() })
	cases := transportCases(t)
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) { sdRun(t, cases[i], client) })
}

func sdRun(t *testing.T, tc transportCase, client *redis.Client) {
	e, router, done, sent := sdStart(t, tc, client, 0)
	e.closeFirst(tc, router, done, sent)
	if tc.name == "gochannel" {
		return
	}
	e.second(tc)
	e.waitHandled(tc, sent)
}

// sdStart starts the first consumer on tc with the places' concerns,
// publishes n messages to each place (sdPlaces) and waits until every
// place holds its messages. done closes when the router's Run returns.
func sdStart(t *testing.T, tc transportCase, client *redis.Client, n int) (e *sdEnv, router *message.Router, done chan struct{}, sent []string) {
	run := strings.ToLower(watermill.NewShortUUID())
	store, err := redisdedup.New(client, "levee_sd_"+run+":")
	require.NoError(t, err)
	e = &sdEnv{t: t, prefix: "levee_sd_" + run + "_", store: store, done: map[string]string{}, acked: map[string]bool{}, n: n}
	if e.group = tc.group; e.group != "" {
		e.group = "sd-" + run
	}
	e.tr = newTransport(t, tc, e.group, adapters.WithConcurrency(4))
	e.firstTr = e.tr
	e.metrics = sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.metrics))
	e.b, err = breaker.New(breaker.WithName("sd"), breaker.WithMeterProvider(mp))
	require.NoError(t, err)
	e.b.ForceOpen()
	e.s, err = priority.NewScheduler(priority.WithSlots(1), priority.WithMeterProvider(mp))
	require.NoError(t, err)
	e.l, err = ratelimit.New(ratelimit.WithRate(1.0/600), ratelimit.WithBurst(1))
	require.NoError(t, err)

	router = scenarioRouter(t)
	router.AddMiddleware(e.tr.Middleware)
	for _, p := range sdPlaces(n) {
		e.add(router, p)
	}
	done = make(chan struct{})
	go func() { defer close(done); _ = router.Run(context.Background()) }()
	<-router.Running()
	for _, p := range sdPlaces(n) {
		for range p.msgs {
			m := message.NewMessage(watermill.NewUUID(), []byte(p.name))
			sent = append(sent, m.UUID)
			require.NoError(t, e.tr.Publisher.Publish(e.topic(p.name), m))
		}
	}
	for _, p := range sdPlaces(n) {
		scenarioWait(t, "messages held in "+p.name, func() bool { return p.held(e) })
	}
	return e, router, done, sent
}

// closeFirst closes the first consumer's router, checks that it returns
// within sdCloseWithin and acked nothing unhandled, then closes its
// concerns and transport.
func (e *sdEnv) closeFirst(tc transportCase, router *message.Router, done chan struct{}, sent []string) {
	t := e.t
	start := time.Now()
	require.NoError(t, router.Close(), "router close")
	took := time.Since(start)
	<-done
	t.Logf("%s: router closed in %v", tc.name, took.Round(time.Millisecond))
	require.Less(t, took, sdCloseWithin, "router close with messages held")
	e.closeConcerns()
	e.checkNoneAckedUnhandled(sent)
	require.NoError(t, e.firstTr.Close())
}

// waitHandled waits until a handler processed every message of sent.
func (e *sdEnv) waitHandled(tc transportCase, sent []string) {
	deadline := time.Now().Add(scenarioTimeout)
	for e.handled(sent) < len(sent) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d of %d messages handled after %v (a dedup claim left behind defers its redelivery for the lease)",
				tc.name, e.handled(sent), len(sent), scenarioTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closeConcerns closes what the first consumer used, as adapters/service
// does after the router, and checks that nothing is held any more.
func (e *sdEnv) closeConcerns() {
	// Watermill's router can return from Close with a redelivery it
	// started as Close ran (its wait for running handlers and its
	// dispatch loop race): on GoChannel a Nacked message comes back at
	// once. Such a delivery has a cancelled context, and ends on its own.
	for _, p := range sdPlaces(e.n) {
		if n := e.flight(p.name).Load(); n != 0 {
			e.t.Logf("%s: %d deliveries in the stack after the router's Close returned", p.name, n)
		}
		scenarioWait(e.t, p.name+": no delivery in the stack", func() bool { return e.flight(p.name).Load() == 0 })
	}
	// The gauges of what is held are back to 0 (read before Close
	// unregisters them).
	ms := tfMetrics(e.t, e.metrics)
	require.Zero(e.t, tfSum(e.t, ms, "levee.breaker.paused"), "levee.breaker.paused after the router closed")
	for _, name := range []string{"levee.priority.queue.depth", "levee.priority.slots.in_use"} {
		for _, dp := range ms[name].Data.(metricdata.Gauge[int64]).DataPoints {
			require.Zero(e.t, dp.Value, "%s %v after the router closed", name, dp.Attributes.ToSlice())
		}
	}
	for _, bt := range e.batchers {
		require.NoError(e.t, bt.Close())
	}
	require.NoError(e.t, e.b.Close())
	require.NoError(e.t, e.s.Close())
	require.NoError(e.t, e.l.Close())
	st := e.s.Stats()
	require.Zero(e.t, st.InUse, "priority slots in use after close")
	require.Zero(e.t, st.Waiting, "priority waiting after close")
}

// checkNoneAckedUnhandled fails on a message the first router acked
// whose handler never succeeded.
func (e *sdEnv) checkNoneAckedUnhandled(sent []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range sent {
		if e.acked[id] {
			require.Contains(e.t, e.done, id, "message %s acked without a handler success", id)
		}
	}
}

// second runs a consumer on the same group whose handlers succeed,
// behind the same dlq and dedup (the shared store) as the first.
func (e *sdEnv) second(tc transportCase) {
	e.tr = newTransport(e.t, tc, e.group, adapters.WithConcurrency(4))
	router := scenarioRouter(e.t)
	router.AddMiddleware(e.tr.Middleware)
	for _, p := range sdPlaces(e.n) {
		ok := e.succeed("second:" + p.name)
		h := sdBase(e, p.name).Middleware(func(msg *message.Message) ([]*message.Message, error) { ok(msg); return nil, nil })
		router.AddConsumerHandler(p.name, e.topic(p.name), e.tr.Subscriber, scenarioConsumer(h))
	}
	scenarioRun(e.t, router)
}

// handled is how many of sent a handler processed.
func (e *sdEnv) handled(sent []string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, id := range sent {
		if _, ok := e.done[id]; ok {
			n++
		}
	}
	return n
}
