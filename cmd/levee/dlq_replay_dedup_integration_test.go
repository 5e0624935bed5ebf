//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/levee-dev/levee/adapters/pgdedup"
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

// TestDLQReplayDedupStoreStallHoldsLetters: a PostgreSQL dedup store whose
// table another session holds locked makes --dedup-store's check of each
// letter fail after `store: timeout` (the letters held back, reported),
// instead of hanging the replay for as long as the lock is held.
func TestDLQReplayDedupStoreStallHoldsLetters(t *testing.T) {
	brokertest.SkipIfDown(t, "127.0.0.1:5432")
	ctx := context.Background()
	table := brokertest.Name("levee_cli_dedup_stall")
	s, err := pgdedup.Open(ctx, brokertest.PostgresURL(), pgdedup.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := pgx.Connect(ctx, brokertest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(ctx, `DROP TABLE IF EXISTS `+table)
		_ = conn.Close(ctx)
	})
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	cmd, _, pub, out, _ := dlqTestCmd(t)
	cmd.configPath = dlqWriteConfig(t, strings.Replace(dlqTestConfig, `5432/test"}`, `5432/test", timeout: 500ms}`, 1))
	done := make(chan int, 1)
	go func() {
		done <- cmd.run(ctx, []string{"replay", "--rate", "0", "--topic", "orders", "--dedup-store", brokertest.PostgresURL(), "--dedup-name", table})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a failure bound: the check takes 500 ms a letter
		_ = tx.Rollback(ctx)
		<-done
		t.Fatalf("the replay hung on the locked dedup table until the lock was released\n%s", out)
	}
	_ = tx.Rollback(ctx)
	if len(pub.msgs) != 0 || !strings.Contains(out.String(), "dedup check failed") {
		t.Errorf("sent %d messages; want the letters held back with the failed check in the report\n%s", len(pub.msgs), out)
	}
}
