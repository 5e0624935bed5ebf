package dlqops_test

import (
	"context"
	"errors"
	"testing"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestReplayKeepsTheDedupIdentity: a replay carries the letter's
// levee.KeyDedupID (a deduplicating consumer drops the replay of a message
// that succeeded); with NewIdentity it carries the replay's own UUID.
func TestReplayKeepsTheDedupIdentity(t *testing.T) {
	for _, tt := range []struct {
		name        string
		dedupID     string // on the letter
		newIdentity bool
		want        string
	}{
		{"kept", "order-7", false, "order-7"},
		{"the original UUID when absent", "", false, "u000"},
		{"new identity", "order-7", true, "replay-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := dlqops.NewMemStore()
			msg := opsDeadLetterMsg("u000", "orders", opsFP, 0, opsNow)
			if tt.dedupID != "" {
				msg.Metadata[levee.KeyDedupID] = tt.dedupID
			}
			if _, err := s.Add(context.Background(), dlqops.NewRecord(msg, "orders.dlq", opsNow)); err != nil {
				t.Fatal(err)
			}
			p := &opsPublisher{}
			r := opsReplayer(t, s, p, dlqops.WithReplayUUID(func() string { return "replay-1" }))
			if _, err := r.Replay(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Group: opsFP}, NewIdentity: tt.newIdentity}); err != nil {
				t.Fatal(err)
			}
			msgs, _, _ := p.sent()
			if len(msgs) != 1 {
				t.Fatalf("sent %d messages, want 1", len(msgs))
			}
			if got := msgs[0].Metadata[levee.KeyDedupID]; got != tt.want {
				t.Errorf("%s: got %q, want %q", levee.KeyDedupID, got, tt.want)
			}
		})
	}
}

// TestReplayHoldsASucceededMessage: with a done check, a letter whose
// identity is done is held (reported, not published); with NewIdentity
// it is replayed; a failing check holds it too.
func TestReplayHoldsASucceededMessage(t *testing.T) {
	for _, tt := range []struct {
		name        string
		done        bool
		checkErr    error
		newIdentity bool
		wantErr     error // of the held item; nil: replayed
	}{
		{"done: held", true, nil, false, dlqops.ErrAlreadySucceeded},
		{"not done: replayed", false, nil, false, nil},
		{"done, new identity: replayed", true, nil, true, nil},
		{"check fails: held", false, errors.New("redis down"), false, dlqops.ErrDoneCheck},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := dlqops.NewMemStore()
			msg := opsDeadLetterMsg("u000", "orders", opsFP, 0, opsNow)
			if _, err := s.Add(context.Background(), dlqops.NewRecord(msg, "orders.dlq", opsNow)); err != nil {
				t.Fatal(err)
			}
			var asked string
			p := &opsPublisher{}
			r := opsReplayer(t, s, p, dlqops.WithReplayDoneCheck(func(_ context.Context, handler, id string) (bool, error) {
				asked = handler + "/" + id
				return tt.done, tt.checkErr
			}))
			rep, err := r.Replay(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Group: opsFP}, NewIdentity: tt.newIdentity})
			if err != nil {
				t.Fatal(err)
			}
			msgs, _, _ := p.sent()
			if tt.wantErr == nil {
				if rep.Replayed != 1 || len(msgs) != 1 {
					t.Fatalf("got %d replayed, %d sent; want 1, 1", rep.Replayed, len(msgs))
				}
				return
			}
			if rep.Held != 1 || len(msgs) != 0 || !errors.Is(rep.Items[0].Err, tt.wantErr) {
				t.Fatalf("got %d held, %d sent, err %v; want 1 held, none sent, %v", rep.Held, len(msgs), rep.Items[0].Err, tt.wantErr)
			}
			if want := msg.Metadata[dlq.KeyHandler] + "/u000"; asked != want {
				t.Errorf("identity asked: got %q, want %q (the handler, the original UUID)", asked, want)
			}
		})
	}
}

// TestEditedReplayLeavesAKeyedIdentityToTheConsumer: an edited replay
// carries no levee.KeyDedupID the consumer's key function gave the
// letter (the edit may change the field the key is read from: the key
// function reads it again from the edited payload); a letter keyed by its
// UUID keeps it. Before, the edited replay kept the old identity, so a
// consumer deduplicated the edited order under the old order's ID.
func TestEditedReplayLeavesAKeyedIdentityToTheConsumer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		dedupID string // on the letter
		want    string // "" for none
	}{
		{"keyed: left to the consumer", "order-7", ""},
		{"by UUID: kept", "", "u000"},
		{"replay of a UUID-keyed message: kept", "u000", "u000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := dlqops.NewMemStore()
			msg := opsDeadLetterMsg("u000", "orders", opsFP, 0, opsNow)
			if tt.dedupID != "" {
				msg.Metadata[levee.KeyDedupID] = tt.dedupID
			}
			rec := dlqops.NewRecord(msg, "orders.dlq", opsNow)
			if _, err := s.Add(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			p := &opsPublisher{}
			r := opsReplayer(t, s, p)
			if _, err := r.ReplayEdited(context.Background(), rec.ID, []byte(`{"order":"order-8"}`), "alice"); err != nil {
				t.Fatal(err)
			}
			msgs, _, _ := p.sent()
			if len(msgs) != 1 {
				t.Fatalf("sent %d messages, want 1", len(msgs))
			}
			if got, ok := msgs[0].Metadata[levee.KeyDedupID]; got != tt.want || (tt.want == "" && ok) {
				t.Errorf("%s: got %q (set %v), want %q", levee.KeyDedupID, got, ok, tt.want)
			}
		})
	}
}
