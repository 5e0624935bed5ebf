package console

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// countingPublisher counts the replays of each letter (dlq.KeyReplayOf)
// that it passes on.
type countingPublisher struct {
	next message.Publisher
	mu   sync.Mutex
	of   map[string]int
}

func (p *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	for _, m := range msgs {
		p.of[m.Metadata[dlq.KeyReplayOf]]++
	}
	p.mu.Unlock()
	return p.next.Publish(topic, msgs...)
}

func (p *countingPublisher) Close() error { return nil }

// TestCanariesOfOverlappingGroups: two operators start canaries at once
// over selections that overlap, one of the fingerprint group, one of the
// topic holding it (the one-canary-a-group rule does not apply). Whether
// the downstream is fixed or still broken, no letter is published twice
// between them, none is marked replayed that was not published, and each
// run ends (finished or halted).
func TestCanariesOfOverlappingGroups(t *testing.T) {
	for _, broken := range []bool{false, true} {
		f := newFixture(t)
		f.down.SetBroken(broken)
		pub := &countingPublisher{next: f.down, of: map[string]int{}}
		f.srv.deps.Publisher = pub
		tok := f.csrf("alice")
		for _, sel := range [][2]string{{"fingerprint", "g1"}, {"topic", "orders"}} {
			rec := f.do("POST", "/canary", "alice", url.Values{"by": {sel[0]}, "key": {sel[1]}, "csrf": {tok}, "wait": {"200ms"}, "ratio": {"0.9"}})
			if rec.Code != 303 {
				t.Fatalf("start %v: got %d %s", sel, rec.Code, rec.Body)
			}
		}
		for n := 1; n <= 2; n++ {
			waitFor(t, "the canaries to end", func() bool {
				return !strings.Contains(f.do("GET", "/canary?run="+f.run(n), "alice", nil).Body.String(), `http-equiv="refresh"`)
			})
		}
		pub.mu.Lock()
		for id, n := range pub.of {
			if n != 1 {
				t.Errorf("broken %v: letter %s published %d times by two overlapping canaries", broken, id, n)
			}
		}
		total := len(pub.of)
		pub.mu.Unlock()
		replayed, _ := f.store.List(context.Background(), dlqops.Filter{Topic: "orders", Statuses: []dlqops.Status{dlqops.StatusReplayed}})
		// fixed: the topic's 6 letters but the hostile one, which the
		// schema holds; broken: each run halts after its first wave of 1
		want := 5
		if broken {
			want = 2
		}
		if total != want || len(replayed) != want {
			t.Errorf("broken %v: %d letters published, %d marked replayed, want %d each", broken, total, len(replayed), want)
		}
	}
}
