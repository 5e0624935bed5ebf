//go:build integration

package adapters_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// The child replayer's settings, from the parent.
const (
	envReplaySchema = "LEVEE_REPLAY_CHILD_SCHEMA"
	envReplayTopic  = "LEVEE_REPLAY_CHILD_TOPIC"
)

// replayChildLease is the child's claim lease: short, so the parent's run
// after a kill takes the claims the child left.
const replayChildLease = 2 * time.Second

// TestReplayKilledHalfWay SIGKILLs a replayer (this test binary run again
// as a child) at random moments of a replay from a PostgreSQL store to
// RabbitMQ, three times, then replays what is left. No letter is lost:
// each is on the broker and marked replayed at the end; none is marked
// replayed without being on the broker; a letter goes out twice only when
// a kill fell between its publish and its mark, so at most once per kill.
func TestReplayKilledHalfWay(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.PostgresURL())
	brokertest.SkipIfDown(t, amqpURL)
	ctx := context.Background()
	store, schema := replayPGStore(t)
	topic := scenarioTopic("replaykill")
	const n = 60
	seedReplayLetters(t, store, topic, n)

	tr, err := adapters.New(ctx, adapters.WithAMQP(amqpURL), adapters.WithConcurrency(4))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	var mu sync.Mutex
	got := map[string]int{} // letter ID -> replays received
	router := scenarioRouter(t)
	router.AddConsumerHandler("replays", topic, tr.Subscriber, func(msg *message.Message) error {
		mu.Lock()
		got[msg.Metadata.Get(dlq.KeyReplayOf)]++
		mu.Unlock()
		return nil
	})
	scenarioRun(t, router)

	kills := 0
	for range 3 {
		if killReplayChild(t, schema, topic) {
			kills++
		}
		time.Sleep(replayChildLease + 500*time.Millisecond) // the claims it left lapse
	}
	r, err := dlqops.NewReplayer(store, tr.Publisher, dlqops.WithReplayRate(0), dlqops.WithReplayTopics(topic))
	require.NoError(t, err)
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{Topic: topic}})
	require.NoError(t, err)
	require.Less(t, rep.Replayed, n, "the killed replayers replayed nothing")

	letters, err := store.List(ctx, dlqops.Filter{Topic: topic})
	require.NoError(t, err)
	scenarioWait(t, "every replay received", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, dl := range letters {
		require.Equal(t, dlqops.StatusReplayed, dl.Status, "letter %s", dl.ID)
		require.GreaterOrEqual(t, got[dl.ID], 1, "letter %s marked replayed, never received", dl.ID)
		require.LessOrEqual(t, got[dl.ID], 2, "letter %s", dl.ID)
		if got[dl.ID] == 2 {
			twice++
		}
	}
	t.Logf("%d kills, %d letters left to the last run; %d replayed twice (a kill between publish and mark)", kills, rep.Replayed, twice)
	require.LessOrEqual(t, twice, kills, "letters sent twice")
}

// seedReplayLetters records n dead letters of topic, as the dlq writes
// them, from topic's default DLQ topic.
func seedReplayLetters(t *testing.T, s dlqops.Store, topic string, n int) {
	t.Helper()
	mon, err := dlqops.NewMonitor(s)
	require.NoError(t, err)
	now := time.Now()
	for i := range n {
		m := message.NewMessage(watermill.NewUUID(), []byte("order-"+strconv.Itoa(i)))
		m.Metadata = message.Metadata{
			dlq.KeyOriginalTopic: topic, dlq.KeyHandler: "orders", dlq.KeyError: "declined",
			dlq.KeyErrorClass: "permanent", dlq.KeyFingerprint: "0123456789abcdef", dlq.KeyAttempts: "1",
			dlq.KeyLastFailureAt: dlq.FormatTime(now.Add(time.Duration(i) * time.Millisecond)),
			dlq.KeyOriginalUUID:  m.UUID, dlq.KeyDLQTopic: dlq.DefaultTopic(topic),
		}
		require.NoError(t, mon.Record(context.Background(), dlq.DefaultTopic(topic), m))
	}
}

// killReplayChild starts the child replayer and SIGKILLs it at a random
// moment of its run; it reports whether the child was still running.
func killReplayChild(t *testing.T, schema, topic string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplayKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envReplaySchema+"="+schema, envReplayTopic+"="+topic)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := childLines(out)
	expectLine(t, lines, "ready")
	time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
	running := cmd.Process.Signal(syscall.SIGKILL) == nil
	_ = cmd.Wait()
	return running
}

// TestReplayKillChild is the replayer TestReplayKilledHalfWay kills; it
// does nothing unless that test started it.
func TestReplayKillChild(t *testing.T) {
	schema := os.Getenv(envReplaySchema)
	if schema == "" {
		t.Skip("run by TestReplayKilledHalfWay")
	}
	ctx := context.Background()
	s, err := pgstore.Open(ctx, brokertest.PostgresURL(), pgstore.WithSchema(schema))
	require.NoError(t, err)
	tr, err := adapters.New(ctx, adapters.WithAMQP(amqpURL))
	require.NoError(t, err)
	topic := os.Getenv(envReplayTopic)
	r, err := dlqops.NewReplayer(s, tr.Publisher, dlqops.WithReplayRate(20), dlqops.WithReplayBatch(10),
		dlqops.WithReplayLease(replayChildLease), dlqops.WithReplayTopics(topic))
	require.NoError(t, err)
	fmt.Println("ready")
	_, err = r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{Topic: topic}})
	fmt.Println("finished", err)
	select {} // until killed
}
