package dlqops_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// stalledPublisher blocks its first publish until release is closed, as
// a broker that blocks publishers (a RabbitMQ memory alarm) does.
type stalledPublisher struct {
	opsPublisher
	stalled chan struct{} // closed when the first publish blocks
	release chan struct{}
	first   bool
}

func (p *stalledPublisher) Publish(topic string, msgs ...*message.Message) error {
	if !p.first {
		p.first = true
		close(p.stalled)
		<-p.release
	}
	return p.opsPublisher.Publish(topic, msgs...)
}

// TestStalledPublishKeepsItsClaim: a replay whose publish outlasts its
// claim's lease (three leases) keeps the letter: a second replay that runs
// meanwhile claims nothing, and the letter is published once. Before, the
// second replay claimed it when the lease ended and both published it.
func TestStalledPublishKeepsItsClaim(t *testing.T) {
	for _, edit := range []bool{false, true} {
		name := "replay"
		if edit {
			name = "edited replay"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := dlqops.NewMemStore()
				opsSeed(t, s, 1)
				const lease = time.Minute
				p := &stalledPublisher{stalled: make(chan struct{}), release: make(chan struct{})}
				a, err := dlqops.NewReplayer(s, p, dlqops.WithReplayRate(0), dlqops.WithReplayOwner("a"), dlqops.WithReplayLease(lease))
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					if edit {
						_, err := a.ReplayEdited(context.Background(), opsID("u000"), []byte(`{"order":"fixed"}`), "op")
						done <- err
						return
					}
					_, err := a.Replay(context.Background(), dlqops.ReplaySelection{})
					done <- err
				}()
				<-p.stalled
				time.Sleep(3 * lease)
				b := opsReplayer(t, s, &p.opsPublisher, dlqops.WithReplayOwner("b"), dlqops.WithReplayLease(lease))
				rep, err := b.Replay(context.Background(), dlqops.ReplaySelection{})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Replayed != 0 {
					t.Errorf("the second replay replayed %d letters held by a stalled publish, want 0", rep.Replayed)
				}
				close(p.release)
				if err := <-done; err != nil {
					t.Fatalf("the stalled replay: %v", err)
				}
				if msgs, _, _ := p.sent(); len(msgs) != 1 {
					t.Errorf("published %d times, want once", len(msgs))
				}
				if dl, _ := s.Get(context.Background(), opsID("u000")); dl.Status != dlqops.StatusReplayed {
					t.Errorf("letter is %s, want replayed", dl.Status)
				}
			})
		})
	}
}
