package main

import (
	"context"
	"testing"

	"github.com/levee-dev/levee"
)

// TestDLQReplayNewIdentity: --new-identity gives each replay a dedup
// identity of its own (its new UUID); without it a replay keeps the
// letter's (checked in dlqops).
func TestDLQReplayNewIdentity(t *testing.T) {
	cmd, _, pub, _, _ := dlqTestCmd(t)
	if code := cmd.run(context.Background(), []string{"replay", "--rate", "1000/s", "--topic", "orders", "--new-identity"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if len(pub.msgs) == 0 {
		t.Fatal("nothing replayed")
	}
	for _, m := range pub.msgs {
		if got := m.Metadata[levee.KeyDedupID]; got != m.UUID {
			t.Errorf("%s: got %q, want the replay's UUID %q", levee.KeyDedupID, got, m.UUID)
		}
	}
}
