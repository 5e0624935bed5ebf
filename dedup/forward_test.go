package dedup_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
)

// TestForwardedMetadataCarriesNoIdentity: a handler that copies its
// message's metadata onto the messages it publishes (a common way to
// carry correlation ids) must not hand its identity to them. Before, the
// middleware wrote levee.KeyDedupID on the message before the handler
// ran; the copies carried it, and a deduplicating consumer downstream
// (where KeyDedupID wins over its key function) acked every copy after
// the first as a duplicate: distinct messages dropped. The identity is
// written only after a failure, for the dead letter, and a value the key
// function gives anyway is hidden from the handler (an in-process retry
// after a failure sees none either).
func TestForwardedMetadataCarriesNoIdentity(t *testing.T) {
	store, err := dedup.NewMemStore(100)
	if err != nil {
		t.Fatal(err)
	}
	byOrder, _ := dedup.MetadataKey("order_id")
	var forwarded []*message.Message
	fails := 1
	upstream := newDedup(t, dedup.WithStore(store), dedup.WithNamespace("orders"), dedup.WithKeyFunc(byOrder)).Middleware(
		func(m *message.Message) ([]*message.Message, error) {
			for _, ship := range []string{"s1", "s2"} {
				out := message.NewMessage(fmt.Sprintf("%s-%d-%s", m.UUID, len(forwarded), ship), nil)
				for k, v := range m.Metadata {
					out.Metadata.Set(k, v)
				}
				out.Metadata.Set("shipment_id", ship)
				forwarded = append(forwarded, out)
			}
			if fails > 0 {
				fails--
				return nil, errors.New("downstream down")
			}
			return nil, nil
		})
	in := msg("u1", "")
	in.Metadata.Set("order_id", "o1")
	if _, err := upstream(in); err == nil {
		t.Fatal("first attempt: got nil, want the handler's error")
	}
	if got := in.Metadata.Get(levee.KeyDedupID); got != "o1" {
		t.Errorf("after a failure %s: got %q, want o1 (the dead letter keeps the identity)", levee.KeyDedupID, got)
	}
	if _, err := upstream(in); err != nil { // the dlq's in-process retry: the same message
		t.Fatalf("retry: %v", err)
	}
	for _, m := range forwarded {
		if got := m.Metadata.Get(levee.KeyDedupID); got != "" {
			t.Errorf("forwarded %s carries %s %q, want none", m.UUID, levee.KeyDedupID, got)
		}
	}
	var ships counter
	downstream := newDedup(t, dedup.WithStore(store), dedup.WithNamespace("shipments")).Middleware(ships.handle)
	for _, m := range forwarded {
		if _, err := downstream(m); err != nil {
			t.Fatal(err)
		}
	}
	if got := ships.count(); got != len(forwarded) {
		t.Errorf("downstream runs: got %d, want %d (each forwarded message is its own)", got, len(forwarded))
	}
}

// TestDeadLetterKeepsTheIdentity: behind a real dlq, the dead letter of a
// message whose identity is a metadata key carries it (written after the
// failure, before the dlq builds the letter), though the handler never
// saw it.
func TestDeadLetterKeepsTheIdentity(t *testing.T) {
	var letters capture
	r, err := dlq.New(&letters, dlq.WithTopic("t.dlq"), dlq.WithMaxAttempts(2),
		dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 2}))
	if err != nil {
		t.Fatal(err)
	}
	byOrder, _ := dedup.MetadataKey("order_id")
	seen := 0
	h := r.Middleware(newDedup(t, dedup.WithKeyFunc(byOrder)).Middleware(func(m *message.Message) ([]*message.Message, error) {
		if _, ok := m.Metadata[levee.KeyDedupID]; ok {
			seen++
		}
		return nil, errors.New("down")
	}))
	m := msg("u1", "")
	m.Metadata.Set("order_id", "o1")
	if _, err := h(m); err != nil {
		t.Fatalf("got %v, want nil (dead-lettered)", err)
	}
	if len(letters.msgs) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(letters.msgs))
	}
	if got := letters.msgs[0].Metadata.Get(levee.KeyDedupID); got != "o1" {
		t.Errorf("dead letter %s: got %q, want o1", levee.KeyDedupID, got)
	}
	if seen != 0 {
		t.Errorf("the handler saw %s in %d of its 2 attempts, want 0", levee.KeyDedupID, seen)
	}
}
