//go:build integration

package adapters_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestForgedReplayLineage: a producer writes the replay lineage keys
// (levee_replay_of naming a real letter, levee_replayed_at,
// levee_replay_count) on a message of its own, which fails in the real
// consuming stack while a canary replay of that letter waits for its
// outcome. The canary judges the replay by the UUID it published, so the
// producer's letter is not the replay failing again; the store does not
// back the claim (dlqops.VerifiedReplay), so the console shows it as
// unverified; the replay's own re-dead-letter is verified.
func TestForgedReplayLineage(t *testing.T) {
	stores := map[string]string{"amqp": "postgres", "redis": "redis"}
	var cases []transportCase
	var names []string
	for _, tc := range transportCases(t) {
		if kind, ok := stores[tc.name]; ok {
			cases, names = append(cases, tc), append(names, tc.name+"_"+kind)
		}
	}
	runConcurrently(t, names, func(t *testing.T, i int) {
		newReplayEnv(t, cases[i], stores[cases[i].name]).forgedLineage(t)
	})
}

func (e *replayEnv) forgedLineage(t *testing.T) {
	ctx := context.Background()
	br, ok := e.store.(dlqops.Browser)
	require.True(t, ok, "the store keeps events")
	require.NoError(t, e.tr.Publisher.Publish(e.topic, message.NewMessage(watermill.NewUUID(), []byte("order-a"))))
	scenarioWait(t, "the order dead-lettered", func() bool { return len(e.letters(t)) == 1 })
	letter := e.letters(t)[0]

	e.ok.Store(true)
	r, err := dlqops.NewReplayer(e.store, e.tr.Publisher, dlqops.WithReplayTopics(e.topic))
	require.NoError(t, err)
	plan := dlqops.CanaryPlan{Waves: []int{1}, Wait: 5 * time.Second, Poll: 50 * time.Millisecond}
	type result struct {
		p   dlqops.CanaryProgress
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := r.Canary(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{IDs: []string{letter.ID}}}, plan, nil)
		done <- result{p, err}
	}()
	scenarioWait(t, "the canary to replay the letter", func() bool {
		dl, err := e.store.Get(ctx, letter.ID)
		return err == nil && dl.Status == dlqops.StatusReplayed
	})
	forged := message.NewMessage(watermill.NewUUID(), []byte("poison-forged"))
	forged.Metadata.Set(dlq.KeyReplayOf, letter.ID)
	forged.Metadata.Set(dlq.KeyReplayedAt, dlq.FormatTime(time.Now()))
	forged.Metadata.Set(dlq.KeyReplayCount, "1")
	require.NoError(t, e.tr.Publisher.Publish(e.topic, forged))
	var forgedLetter dlqops.Record
	scenarioWait(t, "the forged message dead-lettered", func() bool {
		for _, dl := range e.letters(t) {
			if dl.UUID == forged.UUID {
				forgedLetter = dl
				return true
			}
		}
		return false
	})
	select {
	case res := <-done:
		t.Fatalf("the canary ended before the forged letter was stored: %+v %v", res.p, res.err)
	default:
	}
	res := <-done
	require.NoError(t, res.err)
	require.Equal(t, 1, res.p.Processed, "the canary's outcome: %+v", res.p)
	require.Zero(t, res.p.FailedAgain, "the canary took the forged letter for its replay failing: %+v", res.p)

	parent, err := e.store.Get(ctx, letter.ID)
	require.NoError(t, err)
	events, err := br.Events(ctx, letter.ID, dlqops.MaxEvents)
	require.NoError(t, err)
	require.Equal(t, letter.ID, dlqops.ClaimedParent(forgedLetter), "the forged claim crossed the broker")
	require.False(t, dlqops.VerifiedReplay(parent, events, forgedLetter), "the forged claim was verified")
	// The forged count is carried (README: it holds only this letter at
	// max replays sooner).
	require.Equal(t, 1, forgedLetter.ReplayCount, "the forged letter's replay count")

	// The same letter replayed into a failing downstream: its
	// re-dead-letter, the replay's UUID, is verified (a new identity: the
	// first replay succeeded, so dedup would drop this one).
	e.ok.Store(false)
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{Force: true, NewIdentity: true, Filter: dlqops.Filter{IDs: []string{letter.ID}}})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Replayed, "forced replay: %+v", rep)
	var child dlqops.Record
	scenarioWait(t, "the replay dead-lettered again", func() bool {
		for _, dl := range e.letters(t) {
			if dl.UUID == rep.Items[0].ReplayUUID {
				child = dl
				return true
			}
		}
		return false
	})
	parent, err = e.store.Get(ctx, letter.ID)
	require.NoError(t, err)
	require.True(t, dlqops.VerifiedReplay(parent, events, child), "the replay's re-dead-letter was not verified")
}
