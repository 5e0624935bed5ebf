//go:build integration

package pgdedup_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// Environment of the child process TestInboxCrashChild runs in.
const (
	envChildInbox   = "LEVEE_PGDEDUP_CHILD_INBOX"
	envChildEffects = "LEVEE_PGDEDUP_CHILD_EFFECTS"
	envChildSeed    = "LEVEE_PGDEDUP_CHILD_SEED"
)

// childKeys is how many identities the child goes through, each delivered
// twice, again and again: every round resumes where the last one died.
const childKeys = 300

// TestInboxSurvivesSIGKILL runs the handler of the transactional inbox in
// a child process (this test binary, re-executed) and kills it with
// SIGKILL at random moments, ten times: after each kill, every identity
// has both its side-effect row and its done mark, or neither. A last
// child runs to the end: every identity then has exactly one row.
func TestInboxSurvivesSIGKILL(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	s := inbox(t, p)
	fx := effectsTable(t, p)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 10 {
		cmd := child(t, s.Table(), fx, round)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The child writes a line when it starts delivering: the kill
		// then falls 0-150ms into its work, anywhere in a transaction.
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			t.Fatalf("child: %v", err)
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		checkBothOrNeither(t, p, s.Table(), fx)
		var rows int
		if err := p.QueryRow(ctx, "SELECT count(*) FROM "+fx).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed with %d of %d identities written", round, rows, childKeys)
	}
	cmd := child(t, s.Table(), fx, 99)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("last child: %v\n%s", err, out)
	}
	checkBothOrNeither(t, p, s.Table(), fx)
	var rows, keys int
	if err := p.QueryRow(ctx, "SELECT count(*), count(DISTINCT key) FROM "+fx).Scan(&rows, &keys); err != nil {
		t.Fatal(err)
	}
	if rows != childKeys || keys != childKeys {
		t.Errorf("side effects: got %d rows for %d keys, want %d for %d", rows, keys, childKeys, childKeys)
	}
}

// effectsTable creates a fresh side-effect table (a row per handler run
// that committed) and returns it as a quoted identifier.
func effectsTable(t *testing.T, p *pgxpool.Pool) string {
	t.Helper()
	name := brokertest.Fresh(t, "levee_dedup_fx", func(name string) error {
		_, err := p.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		return err
	})
	fx := pgx.Identifier{name}.Sanitize()
	if _, err := p.Exec(context.Background(), "CREATE TABLE "+fx+" (id serial PRIMARY KEY, key text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return fx
}

func child(t *testing.T, inboxTable, fx string, seed int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestInboxCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildInbox+"="+inboxTable, envChildEffects+"="+fx, envChildSeed+"="+strconv.Itoa(seed))
	return cmd
}

// checkBothOrNeither: no side-effect row without a done mark, no done
// mark without its row, and never two rows for one identity.
func checkBothOrNeither(t *testing.T, p *pgxpool.Pool, inboxTable, fx string) {
	t.Helper()
	var orphanRows, orphanMarks, twice int
	err := p.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM `+fx+` f WHERE NOT EXISTS (SELECT 1 FROM `+inboxTable+` i WHERE i.key = f.key AND i.done)),
		(SELECT count(*) FROM `+inboxTable+` i WHERE i.done AND NOT EXISTS (SELECT 1 FROM `+fx+` f WHERE f.key = i.key)),
		(SELECT count(*) FROM (SELECT key FROM `+fx+` GROUP BY key HAVING count(*) > 1) d)`).Scan(&orphanRows, &orphanMarks, &twice)
	if err != nil {
		t.Fatal(err)
	}
	if orphanRows != 0 || orphanMarks != 0 || twice != 0 {
		t.Errorf("after SIGKILL: %d rows without a mark, %d marks without a row, %d identities written twice; want 0, 0, 0", orphanRows, orphanMarks, twice)
	}
}

// TestInboxCrashChild is the child of TestInboxSurvivesSIGKILL; it does
// nothing unless that test started it.
func TestInboxCrashChild(t *testing.T) {
	inboxTable, fx := os.Getenv(envChildInbox), os.Getenv(envChildEffects)
	if inboxTable == "" {
		t.Skip("run by TestInboxSurvivesSIGKILL")
	}
	ctx := context.Background()
	p := pool(t)
	s, err := pgdedup.New(ctx, p, pgdedup.WithTable(unquote(inboxTable)), pgdedup.WithoutMigrate(), pgdedup.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A short lease: a claim the last kill left behind ends quickly.
	d, err := dedup.New(dedup.WithStore(s), dedup.WithLease(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := strconv.Atoi(os.Getenv(envChildSeed))
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	pause := func() {
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}
	h := d.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		tx, err := p.Begin(msg.Context())
		if err != nil {
			return nil, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		pause()
		if _, err := tx.Exec(msg.Context(), "INSERT INTO "+fx+" (key) VALUES ($1)", msg.UUID); err != nil {
			return nil, err
		}
		pause()
		if err := s.MarkDone(msg.Context(), tx); errors.Is(err, dedup.ErrAlreadyDone) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		pause()
		return nil, tx.Commit(msg.Context())
	})
	// Resume a little before where the last child died: the identities
	// before it are done, the last two may be in any state.
	var from int
	if err := p.QueryRow(ctx, "SELECT count(DISTINCT key) FROM "+fx).Scan(&from); err != nil {
		t.Fatal(err)
	}
	fmt.Println("delivering")
	for i := max(0, from-2); i < childKeys; i++ {
		for range 2 { // every message is delivered twice
			key := fmt.Sprintf("k%04d", i)
			for {
				_, err := h(message.NewMessage(key, nil))
				if err == nil {
					break
				}
				time.Sleep(5 * time.Millisecond) // in progress (a claim the kill left) or a failure: redeliver
			}
		}
	}
}

func unquote(ident string) string { return ident[1 : len(ident)-1] }
