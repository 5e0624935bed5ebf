//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestDLQReplayHoldsSucceededMessages: with --dedup-store, a letter whose
// message already succeeded (its identity is done in the consumers' Redis
// dedup store) is held and reported; the others are replayed; with
// --new-identity it is replayed too.
func TestDLQReplayHoldsSucceededMessages(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	ctx := context.Background()
	prefix := brokertest.Name("levee_cli_dedup") + ":"
	s, err := redisdedup.Open(ctx, brokertest.RedisURL(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Done(ctx, "ship/a1", 1, time.Minute); err != nil { // a1's message succeeded later, in handler ship
		t.Fatal(err)
	}
	cmd, _, pub, out, _ := dlqTestCmd(t)
	args := []string{"replay", "--rate", "0", "--topic", "orders", "--dedup-store", brokertest.RedisURL(), "--dedup-name", prefix}
	if code := cmd.run(ctx, args); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if len(pub.msgs) != 1 || pub.msgs[0].Metadata["levee_replay_of"] != "a2" {
		t.Fatalf("sent %d messages, want a2's replay only\n%s", len(pub.msgs), out)
	}
	if !strings.Contains(out.String(), "already succeeded") {
		t.Errorf("report does not say why a1 was held:\n%s", out)
	}
	out.Reset()
	if code := cmd.run(ctx, append(args, "--new-identity", "--id", "a1")); code != 0 || len(pub.msgs) != 2 {
		t.Fatalf("--new-identity: exit %d, sent %d; want 0, 2\n%s", code, len(pub.msgs), out)
	}
	if code := cmd.run(ctx, []string{"replay", "--all", "--dedup-store", "mysql://x"}); code != 2 {
		t.Errorf("bad --dedup-store: exit %d, want 2 (usage)", code)
	}
}
