package dlqtest

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// failAgain is the consumer of replayed messages whose cause is not fixed:
// it dead-letters every replay at once, as dlq.Retrier does (the replayed
// message's metadata with new failure keys, lineage kept), and records the
// letter through a Monitor while the replay runs go on.
type failAgain struct {
	mon *dlqops.Monitor
	n   atomic.Int64
	mu  sync.Mutex
	// counts: replay count seen -> deliveries
	counts map[string]int
}

func (p *failAgain) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		p.mu.Lock()
		p.counts[m.Metadata[dlq.KeyReplayCount]]++
		p.mu.Unlock()
		dl := message.NewMessage(m.UUID, m.Payload)
		dl.Metadata = maps.Clone(m.Metadata)
		for _, k := range dlq.FailureKeys() {
			delete(dl.Metadata, k)
		}
		errText := "inventory service rejected order"
		dl.Metadata[dlq.KeyOriginalTopic] = topic
		dl.Metadata[dlq.KeyHandler] = "h"
		dl.Metadata[dlq.KeyError] = errText
		dl.Metadata[dlq.KeyErrorClass] = "permanent"
		dl.Metadata[dlq.KeyFingerprint] = dlq.Fingerprint("*errors.errorString", errText)
		dl.Metadata[dlq.KeyAttempts] = "1"
		// after every seeded letter, so the runs walk into them
		dl.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(Base.Add(time.Hour + time.Duration(p.n.Add(1))*time.Millisecond))
		dl.Metadata[dlq.KeyDLQTopic] = topic + ".dlq"
		if err := p.mon.Record(context.Background(), topic+".dlq", dl); err != nil {
			return fmt.Errorf("dead-lettering the replay: %w", err)
		}
	}
	return nil
}

func (p *failAgain) Close() error { return nil }

// startBarrier returns a replay clock per replayer whose first reading (the
// run's start) waits until every run has started, so each run starts
// before any replay is published: the runs overlap whatever the scheduling.
func startBarrier(n int) func() func() time.Time {
	var started sync.WaitGroup
	started.Add(n)
	return func() func() time.Time {
		var once sync.Once
		return func() time.Time {
			now := time.Now()
			once.Do(func() { started.Done(); started.Wait() })
			return now
		}
	}
}

// replayersOncePerRun: two replayers run at once over the same letters,
// and every replayed message fails again and comes back as a new letter
// during the runs. Between them the runs replay each letter once and take
// up none of the new letters (a later run does).
func replayersOncePerRun(t *testing.T, s dlqops.Store) {
	ctx := context.Background()
	const total = 20
	mon, err := dlqops.NewMonitor(s, dlqops.WithClock(func() time.Time { return Base.Add(2 * time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	for i := range total {
		id := fmt.Sprintf("seed-%02d", i)
		m := deadLetter(id, `{"order":"`+id+`"}`, "orders", "h", "", "inventory service rejected order")
		m.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(Base.Add(time.Duration(i) * time.Second))
		if err := mon.Record(ctx, "orders.dlq", m); err != nil {
			t.Fatal(err)
		}
	}
	pub := &failAgain{mon: mon, counts: map[string]int{}}
	clock := startBarrier(2)
	var wg sync.WaitGroup
	var replayed atomic.Int64
	for w := range 2 {
		r, err := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0), dlqops.WithReplayBatch(1), dlqops.WithMaxReplays(10),
			dlqops.WithReplayOwner("replayer-"+strconv.Itoa(w)), dlqops.WithClock(clock()))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
			if err != nil {
				t.Error(err)
			}
			replayed.Add(int64(rep.Replayed))
		})
	}
	wg.Wait()
	if got := replayed.Load(); got != total {
		t.Errorf("the two runs replayed %d letters between them, want %d (each once)", got, total)
	}
	pub.mu.Lock()
	if pub.counts["1"] != total || len(pub.counts) != 1 {
		t.Errorf("replay counts published %v, want %d first replays only", pub.counts, total)
	}
	pub.mu.Unlock()
	fresh, err := s.List(ctx, dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}})
	if err != nil || len(fresh) != total {
		t.Fatalf("new letters after the runs: %d %v, want the %d failures of the replays", len(fresh), err, total)
	}
	for _, dl := range fresh {
		if dl.ReplayCount != 1 || dl.Reason == "" {
			t.Errorf("letter %s: replay count %d reason %q, want 1 and left for a later run", dl.ID, dl.ReplayCount, dl.Reason)
		}
	}
	// a later run takes them up, once each
	r, err := dlqops.NewReplayer(s, pub, dlqops.WithReplayRate(0), dlqops.WithMaxReplays(10))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
	if err != nil || rep.Replayed != total {
		t.Errorf("later run: replayed %d, %v want %d", rep.Replayed, err, total)
	}
}
