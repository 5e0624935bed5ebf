package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// cancelingPublisher ends the command's context (as Ctrl-C or SIGTERM
// does) once it has published after messages.
type cancelingPublisher struct {
	dlqTestPublisher
	after  int
	cancel context.CancelFunc
}

func (p *cancelingPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := p.dlqTestPublisher.Publish(topic, msgs...)
	if p.mu.Lock(); len(p.msgs) >= p.after {
		p.cancel()
	}
	p.mu.Unlock()
	return err
}

// stoppingStore is a store whose Prune deletes the oldest letters down to
// keep, then stops as an interrupted or failed store call does, and whose
// reads (List, Page) fail; its SetStatus changes one letter, then is
// interrupted.
type stoppingStore struct {
	*dlqops.MemStore
	keep   int
	cancel context.CancelFunc // nil: the store fails instead
}

var errStoreDown = errors.New("store down")

func (s stoppingStore) Prune(ctx context.Context, r dlqops.Retention, now time.Time) (int, error) {
	n, err := s.MemStore.Prune(ctx, dlqops.Retention{MaxCount: s.keep}, now)
	if err != nil {
		return n, err
	}
	if s.cancel != nil {
		s.cancel()
		return n, ctx.Err()
	}
	return n, errStoreDown
}

func (s stoppingStore) SetStatus(ctx context.Context, f dlqops.Filter, st dlqops.Status) (int, error) {
	f.Limit = 1
	n, err := s.MemStore.SetStatus(ctx, f, st)
	if err != nil {
		return n, err
	}
	s.cancel()
	return n, ctx.Err()
}

func (s stoppingStore) List(context.Context, dlqops.Filter) ([]dlqops.Record, error) {
	return nil, errStoreDown
}

func (s stoppingStore) Page(context.Context, dlqops.PageQuery) (dlqops.LetterPage, error) {
	return dlqops.LetterPage{}, errStoreDown
}

// TestInterruptedRunsSaySo: a replay or a prune stopped by Ctrl-C or
// SIGTERM says it was interrupted, how far it went and to run it again,
// and its last progress line does not say "done"; run again, the replay
// sends the rest, each letter once. Before, the replay's last line ended
// in "done" and its error was Go's "replay stopped: context canceled", a
// prune's did not say it had deleted letters, and a dry run the store
// failed printed "would replay 0 ... (of 0)" as for an empty selection.
func TestInterruptedRunsSaySo(t *testing.T) {
	s := dlqops.NewMemStore()
	for i := range 5 {
		if _, err := s.Add(context.Background(), dlqtest.Letter(fmt.Sprintf("o%d", i), "aaaaaaaaaaaaaaaa", "orders", "ship", time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	pub := &cancelingPublisher{after: 2, cancel: cancel}
	var store dlqops.Store = s
	var out, errb bytes.Buffer
	c := &dlqCmd{stdout: &out, stderr: &errb, now: func() time.Time { return dlqtest.Base.Add(time.Hour) },
		openStore: func(context.Context, dlqops.StoreConfig) (dlqops.Store, func() error, error) {
			return store, func() error { return nil }, nil
		},
		openPublisher: func(context.Context, *config.Config) (message.Publisher, func() error, error) {
			return pub, func() error { return nil }, nil
		},
	}
	c.configPath = dlqWriteConfig(t, dlqTestConfig+"  \n")
	cli := func(ctx context.Context, args ...string) int {
		out.Reset()
		errb.Reset()
		return c.run(ctx, args)
	}
	check := func(name string, code, want int, stderr string, has []string, hasNot ...string) {
		t.Helper()
		if code != want {
			t.Errorf("%s: exit %d, want %d; stderr %s", name, code, want, stderr)
		}
		for _, h := range has {
			if !strings.Contains(stderr, h) {
				t.Errorf("%s: stderr lacks %q:\n%s", name, h, stderr)
			}
		}
		for _, h := range hasNot {
			if strings.Contains(stderr+out.String(), h) {
				t.Errorf("%s: output has %q:\n%s\n%s", name, h, out.String(), stderr)
			}
		}
	}

	code := cli(ctx, "replay", "--group", "aaaaaaaaaaaaaaaa", "--rate", "0")
	check("interrupted replay", code, 1, errb.String(),
		[]string{"2 processed: 2 replayed", "stopped\n", "replay interrupted (Ctrl-C or SIGTERM): run the same command again"},
		", done", "context canceled")
	code = cli(context.Background(), "replay", "--group", "aaaaaaaaaaaaaaaa", "--rate", "0")
	check("replay again", code, 0, errb.String(), []string{"3 processed: 3 replayed", ", done"})
	if len(pub.msgs) != 5 {
		t.Errorf("published %d replays of 5 letters over the two runs, want 5", len(pub.msgs))
	}

	ctx, cancel = context.WithCancel(context.Background())
	store = stoppingStore{MemStore: s, keep: 3, cancel: cancel}
	code = cli(ctx, "prune", "--max-age", "1h")
	check("interrupted prune", code, 1, errb.String(),
		[]string{"prune interrupted (Ctrl-C or SIGTERM) after deleting 2 dead letters: run the same command again"}, "context canceled")
	ctx, cancel = context.WithCancel(context.Background())
	store = stoppingStore{MemStore: s, cancel: cancel}
	code = cli(ctx, "archive", "--all")
	check("interrupted archive", code, 1, errb.String(),
		[]string{"archive interrupted (Ctrl-C or SIGTERM) after archiving 1 dead letters: run the same command again"}, "context canceled")
	store = stoppingStore{MemStore: s, keep: 1}
	code = cli(context.Background(), "prune", "--max-age", "1h")
	check("failed prune", code, 1, errb.String(), []string{"prune stopped after deleting 2 dead letters: store down"})

	code = cli(context.Background(), "replay", "--all", "--dry-run")
	check("failed dry run", code, 1, errb.String(), []string{"replay stopped: store down"}, "would replay 0")
}
