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

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// replayEnv is a consuming service with the whole stack (dlq, dedup,
// breaker, priority, rate limit) on one transport, its dead-letter monitor, and a
// shared dead-letter store (PostgreSQL or Redis).
type replayEnv struct {
	tr    *adapters.Transport
	store dlqops.Store
	topic string
	brk   *breaker.Breaker
	dd    *dedup.Dedup
	ok    atomic.Bool // the downstream is fixed: messages other than poison succeed
	// deliveries counts deliveries at the router, outside the stack
	deliveries atomic.Int64

	mu   sync.Mutex
	runs map[string]int // handler runs by replayed letter ID ("orig:" + UUID for an original)
}

// TestReplayThroughTheStack replays dead letters the way an operator does,
// into the real consuming stack on each transport, with the store on
// PostgreSQL or Redis: the breaker forced open while the replay is
// published (nothing runs and nothing is dead-lettered until it closes,
// then each replay runs once), a letter whose message has since succeeded
// (acked as a duplicate without running, as docs/DEDUP.md says), a poison
// letter that fails again (a new letter naming the one it replays, with a
// fresh attempt budget) and replayed until max replays holds it.
func TestReplayThroughTheStack(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.PostgresURL())
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	stores := map[string]string{"amqp": "postgres", "kafka": "redis", "nats": "redis", "redis": "redis", "postgres": "postgres"}
	var cases []transportCase
	var names []string
	for _, tc := range transportCases(t) {
		if kind, ok := stores[tc.name]; ok {
			cases, names = append(cases, tc), append(names, tc.name+"_"+kind)
		}
	}
	runConcurrently(t, names, func(t *testing.T, i int) {
		tc := cases[i]
		newReplayEnv(t, tc, stores[tc.name]).replayIntoTheStack(t)
		newReplayEnv(t, tc, stores[tc.name]).canary(t)
	})
}

func newReplayEnv(t *testing.T, tc transportCase, storeKind string) *replayEnv {
	t.Helper()
	e := &replayEnv{tr: scenarioTransport(t, tc, 4), topic: scenarioTopic("replay"), runs: map[string]int{}}
	e.store = replayStore(t, storeKind)
	// short, so a replay held by the open breaker is deferred (Nacked
	// with a retry-after, redelivered) a few times before it closes
	const maxHold = 300 * time.Millisecond
	var err error
	e.brk, err = breaker.New(breaker.WithConsecutiveFailures(1000), breaker.WithMaxHold(maxHold))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.brk.Close() })
	lim, err := ratelimit.New(ratelimit.WithRate(50), ratelimit.WithBurst(1), ratelimit.WithMaxHold(maxHold))
	require.NoError(t, err)
	t.Cleanup(func() { _ = lim.Close() })
	sched, err := priority.NewScheduler(priority.WithSlots(2), priority.WithMaxHold(maxHold))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sched.Close() })
	mem, err := dedup.NewMemStore(1000)
	require.NoError(t, err)
	e.dd, err = dedup.New(dedup.WithStore(mem), dedup.WithLease(time.Minute))
	require.NoError(t, err)
	r, err := dlq.New(e.tr.Publisher, dlq.WithTopic(e.topic+".dlq"), dlq.WithMaxHold(maxHold),
		dlq.WithBackoff(dlq.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2, MaxAttempts: 2}))
	require.NoError(t, err)
	mon, err := dlqops.NewMonitor(e.store)
	require.NoError(t, err)
	stack := middleware.NewStack().DLQ(r.Middleware).Dedup(e.dd.Middleware).Breaker(e.brk.Middleware).
		Priority(sched.Middleware).RateLimit(lim.Middleware)
	router := scenarioRouter(t)
	h := scenarioConsumer(stack.Middleware(scenarioHandler(e.handle)))
	router.AddConsumerHandler("replayed", e.topic, e.tr.Subscriber, func(msg *message.Message) error {
		e.deliveries.Add(1)
		return h(msg)
	})
	router.AddConsumerHandler("monitor", e.topic+".dlq", e.tr.Subscriber, mon.Handle)
	scenarioRun(t, router)
	return e
}

// replayStore opens a dead-letter store of its own on kind's server,
// dropped when the test ends.
func replayStore(t *testing.T, kind string) dlqops.Store {
	t.Helper()
	ctx := context.Background()
	if kind == "postgres" {
		s, _ := replayPGStore(t)
		return s
	}
	prefix := brokertest.Name("levee_replay")
	s, err := redisstore.Open(ctx, brokertest.RedisURL(), redisstore.WithPrefix(prefix))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = s.Close()
		o, err := redis.ParseURL(brokertest.RedisURL())
		require.NoError(t, err)
		c := redis.NewClient(o)
		defer c.Close()
		iter := c.Scan(context.Background(), 0, prefix+":*", 1000).Iterator()
		for iter.Next(context.Background()) {
			c.Unlink(context.Background(), iter.Val())
		}
	})
	return s
}

// replayPGStore opens a PostgreSQL dead-letter store in a schema of its
// own, dropped when the test ends, and returns it with the schema.
func replayPGStore(t *testing.T) (*pgstore.Store, string) {
	t.Helper()
	schema := brokertest.Name("levee_replay")
	s, err := pgstore.Open(context.Background(), brokertest.PostgresURL(), pgstore.WithSchema(schema))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := s.Pool().Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
		require.NoError(t, err)
		_ = s.Close()
	})
	return s, schema
}

func (e *replayEnv) handle(msg *message.Message) error {
	key := msg.Metadata.Get(dlq.KeyReplayOf)
	if key == "" {
		key = "orig:" + msg.UUID
	}
	e.mu.Lock()
	e.runs[key]++
	e.mu.Unlock()
	switch {
	case strings.HasPrefix(string(msg.Payload), "poison"):
		return errors.New("downstream timed out") // transient: exhausted after max attempts
	case !e.ok.Load():
		return dlq.Permanent(errors.New("downstream rejected the order"))
	}
	return nil
}

func (e *replayEnv) runsOf(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[key]
}

// letters returns the topic's letters in the store.
func (e *replayEnv) letters(t *testing.T) []dlqops.Record {
	t.Helper()
	ls, err := e.store.List(context.Background(), dlqops.Filter{Topic: e.topic})
	require.NoError(t, err)
	return ls
}

func (e *replayEnv) replay(t *testing.T) dlqops.ReplayReport {
	t.Helper()
	r, err := dlqops.NewReplayer(e.store, e.tr.Publisher, dlqops.WithReplayRate(0), dlqops.WithReplayTopics(e.topic))
	require.NoError(t, err)
	rep, err := r.Replay(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Topic: e.topic}})
	require.NoError(t, err)
	return rep
}

// replayIntoTheStack is the scenario. It is one function past 80 lines
// because it reads as the operator's steps in order, each checked where
// it happens.
func (e *replayEnv) replayIntoTheStack(t *testing.T) {
	const n = 4
	var msgs []*message.Message
	for i := range n {
		msgs = append(msgs, message.NewMessage(watermill.NewUUID(), []byte("order-"+string(rune('a'+i)))))
	}
	poison := message.NewMessage(watermill.NewUUID(), []byte("poison"))
	for _, m := range append(msgs, poison) {
		require.NoError(t, e.tr.Publisher.Publish(e.topic, m.Copy()))
	}
	scenarioWait(t, "every message dead-lettered and stored", func() bool { return len(e.letters(t)) == n+1 })
	byUUID := map[string]dlqops.Record{}
	for _, dl := range e.letters(t) {
		byUUID[dl.UUID] = dl
	}
	require.Equal(t, 2, byUUID[poison.UUID].Attempts, "the poison letter's attempts")

	// The downstream is fixed; the producer publishes the last order
	// again (same UUID) and it succeeds: its letter's replay is a
	// duplicate.
	e.ok.Store(true)
	done := msgs[n-1]
	require.NoError(t, e.tr.Publisher.Publish(e.topic, done.Copy()))
	scenarioWait(t, "the republished order to succeed", func() bool { return e.runsOf("orig:"+done.UUID) == 2 })

	// Replay into an open breaker: published and marked, nothing runs.
	e.brk.ForceOpen()
	before := e.deliveries.Load()
	rep := e.replay(t)
	require.Equal(t, n+1, rep.Replayed, "replayed into the open breaker: %+v", rep)
	time.Sleep(2 * time.Second) // several max holds: deferred and redelivered
	for _, m := range append(msgs, poison) {
		require.Zero(t, e.runsOf(byUUID[m.UUID].ID), "a replay ran through the open breaker")
	}
	require.Len(t, e.letters(t), n+1, "a deferred replay was dead-lettered")
	t.Logf("%d deliveries of %d replays while the breaker was open", e.deliveries.Load()-before, n+1)

	// The breaker closes: each replay runs once; the succeeded one is a
	// duplicate, acked without running; the poison one fails again.
	e.brk.ClearForce()
	scenarioWait(t, "the replays to run", func() bool {
		for _, m := range msgs[:n-1] {
			if e.runsOf(byUUID[m.UUID].ID) != 1 {
				return false
			}
		}
		return e.dd.Stats().Duplicates >= 1 && len(e.letters(t)) == n+2
	})
	require.Zero(t, e.runsOf(byUUID[done.UUID].ID), "the replay of a message that had succeeded ran")
	require.Equal(t, 2, e.runsOf(byUUID[poison.UUID].ID), "the poison replay's attempts (a fresh budget)")
	e.checkLineage(t, byUUID[poison.UUID], rep)

	// Replayed again and again, the poison lineage stops at max replays.
	for round := 2; round <= dlqops.DefaultMaxReplays; round++ {
		rep := e.replay(t)
		require.Equal(t, 1, rep.Replayed, "round %d: %+v", round, rep)
		scenarioWait(t, "the replay to fail again", func() bool { return len(e.letters(t)) == n+1+round })
	}
	rep = e.replay(t)
	require.Equal(t, 0, rep.Replayed, "past max replays: %+v", rep)
	require.Equal(t, 1, rep.Held, "past max replays: %+v", rep)
	require.ErrorIs(t, rep.Items[0].Err, dlqops.ErrMaxReplays)
	time.Sleep(500 * time.Millisecond)
	e.mu.Lock()
	defer e.mu.Unlock()
	total := 0
	for k, v := range e.runs {
		if !strings.HasPrefix(k, "orig:") {
			total += v
		}
	}
	// n-1 orders once each, the poison 2 attempts in each of 3 replays
	require.Equal(t, n-1+2*dlqops.DefaultMaxReplays, total, "handler runs of replays: %v", e.runs)
}

// checkLineage checks the letter the poison replay left: it names the
// letter it replays, carries the replay's UUID and the lineage, and its
// attempts are the replay's own.
func (e *replayEnv) checkLineage(t *testing.T, orig dlqops.Record, rep dlqops.ReplayReport) {
	t.Helper()
	var replayUUID string
	for _, it := range rep.Items {
		if it.ID == orig.ID {
			replayUUID = it.ReplayUUID
		}
	}
	for _, dl := range e.letters(t) {
		if dl.ID == orig.ID {
			require.Equal(t, dlqops.StatusReplayed, dl.Status, "the replayed letter")
			continue
		}
		if dl.Metadata[dlq.KeyReplayOf] != orig.ID {
			continue
		}
		require.Equal(t, replayUUID, dl.UUID, "the new letter's UUID")
		require.Equal(t, orig.UUID, dl.OriginalUUID, "the lineage's original UUID")
		require.Equal(t, 1, dl.ReplayCount, "the replay count")
		require.Equal(t, 2, dl.Attempts, "the replay's attempts")
		require.Equal(t, dlqops.StatusNew, dl.Status)
		return
	}
	t.Fatalf("no letter names %s as the letter it replays", orig.ID)
}

// canary runs a canary replay of a group while the downstream still
// fails (it halts after the first wave, the rest untouched), then after
// the fix (it replays the rest and the first wave's new letter).
func (e *replayEnv) canary(t *testing.T) {
	const n = 6
	for i := range n {
		require.NoError(t, e.tr.Publisher.Publish(e.topic, message.NewMessage(watermill.NewUUID(), []byte("order-"+string(rune('a'+i))))))
	}
	scenarioWait(t, "every message dead-lettered and stored", func() bool { return len(e.letters(t)) == n })
	group := e.letters(t)[0].Fingerprint
	r, err := dlqops.NewReplayer(e.store, e.tr.Publisher, dlqops.WithReplayTopics(e.topic))
	require.NoError(t, err)
	plan := dlqops.CanaryPlan{Waves: []int{1, 5}, Wait: 2 * time.Second, Poll: 50 * time.Millisecond}
	sel := dlqops.ReplaySelection{Filter: dlqops.Filter{Group: group}}
	p, err := r.Canary(context.Background(), sel, plan, nil)
	require.NoError(t, err)
	require.True(t, p.Halted, "canary into a broken downstream: %+v", p)
	require.Equal(t, 1, p.Replayed, "canary into a broken downstream: %+v", p)
	require.Equal(t, 1, p.FailedAgain, "canary into a broken downstream: %+v", p)
	untouched := 0
	for _, dl := range e.letters(t) {
		if dl.Status == dlqops.StatusNew && dl.ReplayCount == 0 && dl.Reason == "" {
			untouched++
		}
	}
	require.Equal(t, n-1, untouched, "letters the halted canary left")

	e.ok.Store(true)
	p, err = r.Canary(context.Background(), sel, plan, nil)
	require.NoError(t, err)
	require.False(t, p.Halted, "canary after the fix: %+v", p)
	require.Equal(t, n, p.Replayed, "canary after the fix: %+v", p)
	require.Equal(t, n, p.Processed, "canary after the fix: %+v", p)
	require.Equal(t, 0, p.FailedAgain, "canary after the fix: %+v", p)
}
