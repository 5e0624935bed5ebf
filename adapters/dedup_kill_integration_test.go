//go:build integration

package adapters_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// Environment of the child consumer TestDedupKillChild runs as.
const (
	envDedupTransport = "LEVEE_DEDUP_CHILD_TRANSPORT"
	envDedupName      = "LEVEE_DEDUP_CHILD_NAME"
	envDedupFX        = "LEVEE_DEDUP_CHILD_FX"
	envDedupTopic     = "LEVEE_DEDUP_CHILD_TOPIC"
)

// killBatch is how many messages the child handles before it is killed:
// the consumer's concurrency, so each is held between handler and ack.
const killBatch = 4

// sigkill: a child consumer handles killBatch messages (side effect and
// done mark committed) and is SIGKILLed before it acks any; the broker
// redelivers them to the parent's consumer, whose dedup drops them all.
func (e *dedupEnv) sigkill(t *testing.T) {
	topic := e.topic + "_kill"
	cmd := exec.Command(os.Args[0], "-test.run=^TestDedupKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDedupTransport+"="+e.tc.name, envDedupName+"="+e.group,
		envDedupFX+"="+e.fx, envDedupTopic+"="+topic, envKafkaBrokers+"="+strings.Join(e.tc.brokers, ","))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := childLines(out)
	expectLine(t, lines, "ready")
	pub := newTransport(t, e.tc, "")
	var keys []string
	for range killBatch {
		m := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
		keys = append(keys, m.UUID)
		require.NoError(t, pub.Publisher.Publish(topic, m))
	}
	for range killBatch {
		expectLine(t, lines, "done ")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	killed = true
	rows, _ := e.rows(t, keys)
	require.Equal(t, killBatch, rows, "side effects committed by the killed consumer")

	d, _ := e.consumer(t, topic, nil)
	scenarioWait(t, "every redelivery dropped", func() bool { return d.Stats().Duplicates >= killBatch })
	rows, distinct := e.rows(t, keys)
	require.Equal(t, killBatch, rows, "side-effect rows after the redelivery")
	require.Equal(t, killBatch, distinct)
}

// childLines sends the child's stdout lines on a channel.
func childLines(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		s := bufio.NewScanner(r)
		for s.Scan() {
			ch <- s.Text()
		}
	}()
	return ch
}

// expectLine waits for a line starting with prefix (other lines, such as
// the test framework's, are skipped).
func expectLine(t *testing.T, lines <-chan string, prefix string) {
	t.Helper()
	deadline := time.After(scenarioTimeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited before %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q from the child within %s", prefix, scenarioTimeout)
		}
	}
}

// TestDedupKillChild is the child consumer of the sigkill case; it does
// nothing unless that case started it. After a handler succeeded it
// prints "done <uuid>" and never returns, so the message is never acked.
func TestDedupKillChild(t *testing.T) {
	name := os.Getenv(envDedupName)
	if name == "" {
		t.Skip("run by TestDedupOverBrokers")
	}
	var tc transportCase
	for _, c := range transportCases(t) {
		if c.name == os.Getenv(envDedupTransport) {
			tc = c
		}
	}
	e := newDedupEnv(t, tc, name, os.Getenv(envDedupFX))
	hold := func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				fmt.Println("done", msg.UUID)
				select {} // between the handler and the ack, until SIGKILL
			}
			return out, err
		}
	}
	e.consumer(t, os.Getenv(envDedupTopic), hold)
	fmt.Println("ready")
	select {}
}

// replaySucceeded: a message's first delivery is dead-lettered (a wrong
// permanent error), the producer publishes it again and it succeeds; the
// replay of its dead letter then keeps its identity and is dropped by the
// consumer; a replayer that asks the inbox holds the letter back instead;
// a replay with a new identity runs.
func (e *dedupEnv) replaySucceeded(t *testing.T) {
	ctx := context.Background()
	topic := e.topic + "_replay"
	d, tr := e.consumer(t, topic, nil)
	letters, err := tr.Subscriber.Subscribe(ctx, topic+".dlq")
	require.NoError(t, err)
	m := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	e.failing.Store(m.UUID)
	require.NoError(t, tr.Publisher.Publish(topic, m.Copy()))
	var dl *message.Message
	select {
	case dl = <-letters:
		dl.Ack()
	case <-time.After(scenarioTimeout):
		t.Fatal("no dead letter")
	}
	require.NoError(t, tr.Publisher.Publish(topic, m.Copy()))
	scenarioWait(t, "the producer's second publish handled", func() bool { r, _ := e.rows(t, []string{m.UUID}); return r == 1 })

	store := dlqops.NewMemStore()
	_, err = store.Add(ctx, dlqops.NewRecord(dl, topic+".dlq", time.Now()))
	require.NoError(t, err)
	rp, err := dlqops.NewReplayer(store, tr.Publisher, dlqops.WithReplayRate(0), dlqops.WithReplayTopics(topic))
	require.NoError(t, err)
	before := d.Stats().Duplicates
	rep, err := rp.Replay(ctx, dlqops.ReplaySelection{})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Replayed)
	scenarioWait(t, "the replay dropped", func() bool { return d.Stats().Duplicates > before })
	rows, _ := e.rows(t, []string{m.UUID})
	require.Equal(t, 1, rows, "side effects of the succeeded message after its replay")

	// Asked first, the replayer holds the letter back and says why.
	checked, err := dlqops.NewReplayer(store, tr.Publisher, dlqops.WithReplayRate(0), dlqops.WithReplayTopics(topic),
		dlqops.WithReplayDoneCheck(func(ctx context.Context, _, id string) (bool, error) { return e.inbox.IsDone(ctx, id) }))
	require.NoError(t, err)
	rep, err = checked.Replay(ctx, dlqops.ReplaySelection{Force: true})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Held)
	require.ErrorIs(t, rep.Items[0].Err, dlqops.ErrAlreadySucceeded)

	rep, err = rp.Replay(ctx, dlqops.ReplaySelection{Force: true, NewIdentity: true})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Replayed)
	fresh := rep.Items[0].ReplayUUID
	scenarioWait(t, "the replay with a new identity handled", func() bool { r, _ := e.rows(t, []string{fresh}); return r == 1 })
	rows, _ = e.rows(t, []string{m.UUID})
	require.Equal(t, 1, rows)
}
