package dedup_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// letters is a publisher that keeps the dead letters.
type letters struct{ msgs []*message.Message }

func (l *letters) Publish(_ string, msgs ...*message.Message) error {
	l.msgs = append(l.msgs, msgs...)
	return nil
}

func (l *letters) Close() error { return nil }

// TestReplayOfALetterFromBeforeDedupKeepsTheKey: a consumer keyed by a
// metadata key dead-letters an order in its dlq's validation, before the
// dedup layer ran (so the letter carries no levee_dedup_id); the producer
// sends the order again, fixed, and it succeeds; the schema is relaxed
// and the letter replayed. The replay is the same order: it must be
// acked as a duplicate. The replayer sets levee_dedup_id to the letter's
// original UUID (the identity when it is the UUID), which won over the
// key, so the order ran twice.
func TestReplayOfALetterFromBeforeDedupKeepsTheKey(t *testing.T) {
	pub := &letters{}
	var strict atomic.Bool
	strict.Store(true)
	r, err := dlq.New(pub, dlq.WithTopic("orders.dlq"), dlq.WithValidator(func(_ string, payload []byte) error {
		if strict.Load() && string(payload) != "fixed" {
			return errors.New("schema: bad order")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	key, err := dedup.MetadataKey("order_id")
	if err != nil {
		t.Fatal(err)
	}
	d := newDedup(t, dedup.WithKeyFunc(key))
	runs := map[string]int{}
	h := r.Middleware(d.Middleware(func(m *message.Message) ([]*message.Message, error) {
		runs[m.Metadata.Get("order_id")]++
		return nil, nil
	}))
	order := func(uuid, payload string) *message.Message {
		m := msg(uuid, payload)
		m.Metadata.Set("order_id", "o-7")
		return m
	}
	for _, m := range []*message.Message{order("first", "draft"), order("resent", "fixed")} {
		if _, err := h(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(pub.msgs) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(pub.msgs))
	}
	strict.Store(false)
	now := time.Now()
	replay := dlqops.ReplayMessage(dlqops.NewRecord(pub.msgs[0], "orders.dlq", now), "replayed", now)
	if _, err := h(replay); err != nil {
		t.Fatal(err)
	}
	if got := runs["o-7"]; got != 1 {
		t.Errorf("runs of order o-7: got %d, want 1 (the replay of its letter is a duplicate of the resent order)", got)
	}
	if got := d.Stats().Duplicates; got != 1 {
		t.Errorf("duplicates: got %d, want 1", got)
	}

	// A replay with a new identity (--new-identity) still runs, and so
	// does a replay whose key the consumer cannot read (the letter's
	// original UUID is its identity then).
	fresh := dlqops.ReplayMessage(dlqops.NewRecord(pub.msgs[0], "orders.dlq", now), "fresh", now)
	fresh.Metadata.Set(levee.KeyDedupID, fresh.UUID)
	noKey := dlqops.ReplayMessage(dlqops.NewRecord(pub.msgs[0], "orders.dlq", now), "nokey", now)
	delete(noKey.Metadata, "order_id")
	for _, m := range []*message.Message{fresh, noKey} {
		if _, err := h(m); err != nil {
			t.Fatal(err)
		}
	}
	if got := runs["o-7"] + runs[""]; got != 3 {
		t.Errorf("runs after a new-identity replay and a keyless one: got %d, want 3", got)
	}
}
