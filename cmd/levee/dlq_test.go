package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// dlqTestPublisher records replays.
type dlqTestPublisher struct {
	mu     sync.Mutex
	fail   error
	topics []string
	msgs   []*message.Message
}

func (p *dlqTestPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	for _, m := range msgs {
		p.topics = append(p.topics, topic)
		p.msgs = append(p.msgs, m)
	}
	return nil
}

func (p *dlqTestPublisher) Close() error { return nil }

func dlqWriteConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "levee.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const dlqTestConfig = "transport: {kind: amqp, amqp: {url: \"amqp://guest:guest@127.0.0.1:5672/\"}}\nstore: {kind: postgres, url: \"postgres://postgres@127.0.0.1:5432/test\"}\n"

// dlqTestCmd returns a command over an in-memory store seeded with letters
// of two groups, and its publisher.
func dlqTestCmd(t *testing.T) (*dlqCmd, *dlqops.MemStore, *dlqTestPublisher, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	s := dlqops.NewMemStore()
	a := dlqtest.Letter("a1", "aaaaaaaaaaaaaaaa", "orders", "ship", 0)
	b := dlqtest.Letter("a2", "aaaaaaaaaaaaaaaa", "orders", "ship", time.Minute)
	c := dlqtest.Letter("b1", "bbbbbbbbbbbbbbbb", "payments", "pay", 2*time.Minute)
	nt := dlqtest.Letter("n1", dlqops.UnknownGroup, "", "", 3*time.Minute)
	if _, err := s.Add(context.Background(), a, b, c, nt); err != nil {
		t.Fatal(err)
	}
	pub := &dlqTestPublisher{}
	var out, errb bytes.Buffer
	cmd := &dlqCmd{stdout: &out, stderr: &errb, now: func() time.Time { return dlqtest.Base.Add(10 * time.Minute) },
		openStore: func(context.Context, dlqops.StoreConfig) (dlqops.Store, func() error, error) {
			return s, func() error { return nil }, nil
		},
		openPublisher: func(context.Context, *config.Config) (message.Publisher, func() error, error) {
			return pub, func() error { return nil }, nil
		},
	}
	cmd.configPath = dlqWriteConfig(t, dlqTestConfig)
	return cmd, s, pub, &out, &errb
}

func TestDLQCommands(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		code      int
		out, errs []string
	}{
		{"groups", []string{"groups"}, 0, []string{"GROUP", "aaaaaaaaaaaaaaaa  2", "bbbbbbbbbbbbbbbb", "unknown", "failure of a2"}, nil},
		{"groups by topic", []string{"groups", "--by", "topic"}, 0, []string{"orders  ", "payments"}, nil},
		{"list group", []string{"list", "--group", "aaaaaaaaaaaaaaaa"}, 0, []string{"a1", "a2"}, nil},
		{"list since", []string{"list", "--since", "8m"}, 0, []string{"b1", "n1"}, nil},
		{"show", []string{"show", "b1"}, 0, []string{"original topic:  payments", `k = "v b1"`, `{"id":"b1"}`}, nil},
		{"show json flag after id", []string{"show", "b1", "--json"}, 0, []string{`"id": "b1"`}, nil},
		{"show missing", []string{"show", "zz"}, 1, nil, []string{"dead letter not found"}},
		{"replay needs a selector", []string{"replay"}, 2, nil, []string{"replay needs a selector", "or --all"}},
		{"replay dry run needs a selector", []string{"replay", "--dry-run", "--limit", "5"}, 2, nil, []string{"replay needs a selector"}},
		{"dry run", []string{"replay", "--dry-run", "--all"}, 0, []string{"would replay 3, held 1", "n1", "original topic missing"}, nil},
		{"replay group", []string{"replay", "--group", "aaaaaaaaaaaaaaaa", "--rate", "0"}, 0, []string{"replayed 2, held 0, failed 0"}, []string{"replay: 2 processed: 2 replayed"}},
		{"archive needs selector", []string{"archive"}, 2, nil, []string{"archive needs a selector"}},
		{"canary flags without --canary", []string{"replay", "--group", "aaaaaaaaaaaaaaaa", "--waves", "1,2", "--wait", "5s"}, 2, nil,
			[]string{"--wait, --waves apply to a canary replay only: add --canary"}},
		{"replay mistyped group", []string{"replay", "--group", "aaaaaaaaaaaaaaab"}, 0, []string{"replayed 0, held 0, failed 0 (of 0)"}, []string{"the selection took no dead letter (a typo in --group"}},
		{"archive mistyped group", []string{"archive", "--group", "aaaaaaaaaaaaaaab"}, 0, []string{"archived 0 dead letters"}, []string{"the selection took no dead letter (a typo in --group"}},
		{"archive ids", []string{"archive", "a1", "b1"}, 0, []string{"archived 2 dead letters"}, nil},
		{"prune needs retention", []string{"prune"}, 2, nil, []string{"no retention configured"}},
		{"prune", []string{"prune", "--max-count", "1"}, 0, []string{"deleted 3 dead letters"}, nil},
		{"prune under the floor", []string{"prune", "--max-age", "1s"}, 2, nil, []string{"--max-age 1s is under 1h", "--force"}},
		{"prune negative max age", []string{"prune", "--max-age", "-5m", "--max-count", "1"}, 2, nil, []string{"negative duration -5m"}},
		{"prune help", []string{"prune", "-h"}, 0, []string{"flags of prune:", "-max-age duration", "(default: store.retention.max_age)\n"}, nil},
		{"prune forced", []string{"prune", "--max-age", "8m", "--force"}, 0, []string{"deleted 2 dead letters"}, nil},
		{"prune dry run", []string{"prune", "--max-age", "8m", "--max-count", "1", "--dry-run", "--force"}, 0,
			[]string{"would delete 3 dead letters (dry run, nothing deleted)", "2 failed more than 8m ago", "aaaaaaaaaaaaaaaa  2", "1 more, the oldest, to keep at most 1"}, nil},
		{"prune dry run under the floor", []string{"prune", "--max-age", "8m", "--dry-run"}, 0,
			[]string{"would delete 2 dead letters (dry run, nothing deleted)"}, nil},
		{"bad rate", []string{"replay", "--rate", "fast"}, 2, nil, []string{"--rate"}},
		{"bad status", []string{"list", "--status", "dead"}, 2, nil, []string{"unknown status"}},
		{"bad window", []string{"groups", "--window", "1d"}, 2, nil, []string{`-window: "1d" is not a duration (use e.g. 250ms, 5s, 1m)`}},
		{"negative window", []string{"groups", "--window", "-1h"}, 2, nil, []string{`"-1h" is negative`}},
		{"bad canary wait", []string{"replay", "--all", "--canary", "--wait", "30"}, 2, nil, []string{`-wait: "30" is not a duration`}},
		{"bad since", []string{"list", "--since", "yesterday"}, 2, nil, []string{"--since"}},
		{"unknown command", []string{"frob"}, 2, nil, []string{`unknown command "frob"`}},
		{"no command", nil, 2, nil, []string{"usage: levee dlq"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, _, _, out, errb := dlqTestCmd(t)
			code := cmd.run(context.Background(), tt.args)
			if code != tt.code {
				t.Errorf("exit %d want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errb)
			}
			for _, w := range tt.out {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.errs {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb)
				}
			}
		})
	}
}

func TestDLQReplayJSONAndState(t *testing.T) {
	cmd, s, pub, out, _ := dlqTestCmd(t)
	if code := cmd.run(context.Background(), []string{"--json", "replay", "--rate", "1000/s", "--topic", "orders"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		Replayed int `json:"replayed"`
		Items    []struct {
			ID      string `json:"id"`
			Outcome string `json:"outcome"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if rep.Replayed != 2 || len(pub.msgs) != 2 || pub.topics[0] != "orders" {
		t.Fatalf("report %+v, sent %d", rep, len(pub.msgs))
	}
	// run again: nothing left to send
	out.Reset()
	if code := cmd.run(context.Background(), []string{"replay", "--topic", "orders"}); code != 0 || len(pub.msgs) != 2 {
		t.Errorf("second run: exit %d, sent %d", code, len(pub.msgs))
	}
	dl, _ := s.Get(context.Background(), "a1")
	if dl.Status != dlqops.StatusReplayed {
		t.Errorf("a1 status %s", dl.Status)
	}
}

func TestDLQReplayBrokerFailure(t *testing.T) {
	cmd, s, pub, _, errb := dlqTestCmd(t)
	pub.fail = errors.New("connection reset")
	if code := cmd.run(context.Background(), []string{"replay", "--group", "bbbbbbbbbbbbbbbb"}); code != 1 {
		t.Fatalf("exit %d want 1", code)
	}
	if !strings.Contains(errb.String(), "replay publish failed") {
		t.Errorf("stderr: %s", errb)
	}
	if dl, _ := s.Get(context.Background(), "b1"); dl.Status != dlqops.StatusNew || dl.Reason == "" {
		t.Errorf("b1 after failure: %+v", dl)
	}
	cmd.openPublisher = func(context.Context, *config.Config) (message.Publisher, func() error, error) {
		return nil, nil, errors.New("broker unreachable: amqp at 127.0.0.1:1")
	}
	errb.Reset()
	if code := cmd.run(context.Background(), []string{"replay", "--all"}); code != 1 || !strings.Contains(errb.String(), "broker unreachable") {
		t.Errorf("exit %d, stderr %s", code, errb)
	}
}

func TestDLQConfigErrors(t *testing.T) {
	tests := []struct {
		name, config, want string
	}{
		{"no store", "transport: {kind: gochannel}\n", "no store section"},
		{"memory store", "store: {kind: memory}\n", "store kind memory lives inside the service"},
		{"bad kind", "store: {kind: mongo}\n", `unknown store kind "mongo"`},
		{"redis without url", "store: {kind: redis}\n", "a redis store needs a url"},
		{"redis bad prefix", "store:\n  kind: redis\n  url: \"redis://127.0.0.1:6379/0\"\n  prefix: \"a b\"\n", "levee.yaml:4: store.prefix"},
		{"unreachable redis store", "store: {kind: redis, url: \"redis://127.0.0.1:1/0\"}\n", "store unreachable: levee/dlqstore: redis store: levee/dlqops: dead-letter store failed: levee/redisstore: redis unreachable at 127.0.0.1:1"},
		{"postgres without url", "store: {kind: postgres}\n", "needs a url"},
		{"unknown key", "store: {kind: postgres, url: x, colour: red}\n", "colour"},
		{"unreachable store", "store: {kind: postgres, url: \"postgres://postgres@127.0.0.1:1/test?connect_timeout=1\"}\n", "store unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			path := dlqWriteConfig(t, tt.config)
			code := runDLQ([]string{"--config", path, "groups"}, &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tt.want)
			}
		})
	}
}

func TestDLQGoChannelCannotReplay(t *testing.T) {
	var out, errb bytes.Buffer
	cmd := &dlqCmd{stdout: &out, stderr: &errb, now: time.Now,
		openStore: func(context.Context, dlqops.StoreConfig) (dlqops.Store, func() error, error) {
			return dlqops.NewMemStore(), func() error { return nil }, nil
		},
		openPublisher: openTransportPublisher,
	}
	cmd.configPath = dlqWriteConfig(t, "transport: {kind: gochannel}\nstore: {kind: postgres, url: x}\n")
	if code := cmd.run(context.Background(), []string{"replay", "--all"}); code != 1 || !strings.Contains(errb.String(), "gochannel is in-process") {
		t.Errorf("exit %d stderr %s", code, errb.String())
	}
	// A file with only the store section (as the demo's hint gave it)
	// says that it lacks the transport section, and what to add.
	errb.Reset()
	cmd.configPath = dlqWriteConfig(t, "store: {kind: postgres, url: x}\n")
	if code := cmd.run(context.Background(), []string{"replay", "--all"}); code != 1 ||
		!strings.Contains(errb.String(), "no transport: section") || !strings.Contains(errb.String(), "give the file the service's transport: section") {
		t.Errorf("without a transport section: exit %d stderr %s", code, errb.String())
	}
}

func TestDLQReplayRevalidates(t *testing.T) {
	cmd, s, pub, out, _ := dlqTestCmd(t)
	dir := t.TempDir()
	schema := filepath.Join(dir, "payment.json")
	if err := os.WriteFile(schema, []byte(`{"type":"object","required":["amount"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.configPath = dlqWriteConfig(t, "schemas: {payments: \""+schema+"\"}\n"+dlqTestConfig)
	if code := cmd.run(context.Background(), []string{"replay", "--all", "--rate", "0"}); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if len(pub.msgs) != 2 || !strings.Contains(out.String(), "payload failed re-validation") {
		t.Errorf("sent %d (want the 2 orders letters), output:\n%s", len(pub.msgs), out)
	}
	if dl, _ := s.Get(context.Background(), "b1"); dl.Status != dlqops.StatusNew || !strings.Contains(dl.Reason, "re-validation") {
		t.Errorf("b1: %s %q", dl.Status, dl.Reason)
	}
}

// `levee dlq show` prints what the store cut from a letter's metadata.
func TestShowPrintsTruncation(t *testing.T) {
	var b strings.Builder
	writeShow(&b, dlqops.Record{ID: "x", Truncated: "metadata cut: kept 1000 of 4006 keys", Metadata: map[string]string{}})
	if !strings.Contains(b.String(), "truncated:") || !strings.Contains(b.String(), "kept 1000 of 4006 keys") {
		t.Errorf("show output has no truncated line:\n%s", b.String())
	}
	b.Reset()
	writeShow(&b, dlqops.Record{ID: "y", Metadata: map[string]string{}})
	if strings.Contains(b.String(), "truncated:") {
		t.Errorf("a whole letter shows a truncated line:\n%s", b.String())
	}
}

// `levee dlq show` prints a panic's code location and its stack, a frame a
// line, made safe for a terminal; the stack is not repeated in the
// metadata list.
func TestShowPrintsStack(t *testing.T) {
	var b strings.Builder
	stack := "goroutine 7 [running]:\npanic({0x1})\n\t/go/src/runtime/panic.go:785 +0x132\nexample.com/shop.(*Svc).Handle(...)\n\t/src/shop/svc.go:42 +0x1d\n\x1b[31m\n"
	writeShow(&b, dlqops.Record{ID: "p", Metadata: map[string]string{
		dlq.KeyStack: stack, dlq.KeyCodeLocation: "example.com/shop.(*Svc).Handle (/src/shop/svc.go:42)",
	}})
	out := b.String()
	for _, want := range []string{
		"code location:",
		" example.com/shop.(*Svc).Handle (/src/shop/svc.go:42)\n",
		"stack (levee_stack, ",
		"\n  example.com/shop.(*Svc).Handle(...)\n      /src/shop/svc.go:42 +0x1d\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") || strings.Count(out, "goroutine 7") != 1 {
		t.Errorf("stack printed unsafely or twice:\n%s", out)
	}
	b.Reset()
	writeShow(&b, dlqops.Record{ID: "q", Metadata: map[string]string{}})
	if strings.Contains(b.String(), "stack") || strings.Contains(b.String(), "code location") {
		t.Errorf("a letter without a panic shows a stack:\n%s", b.String())
	}
}

// TestDLQGroupsLimit: --limit asks the store for that many groups (and
// one more), in --order, and says on stderr how many there are.
func TestDLQGroupsLimit(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		shown  string
		hidden []string
		code   int
		errs   string
	}{
		{"largest", []string{"groups", "--limit", "1"}, "aaaaaaaaaaaaaaaa  2", []string{"bbbbbbbbbbbbbbbb", "unknown"}, 0, "showing 1 of 3 groups (--limit)"},
		{"newest", []string{"groups", "--order", "newest", "--limit", "2"}, "bbbbbbbbbbbbbbbb", []string{"aaaaaaaaaaaaaaaa"}, 0, "showing 2 of 3 groups"},
		{"all fit", []string{"groups", "--limit", "3"}, "bbbbbbbbbbbbbbbb", nil, 0, ""},
		{"bad order", []string{"groups", "--order", "oldest"}, "", nil, 2, "unknown group order"},
		{"negative", []string{"groups", "--limit", "-1"}, "", nil, 2, "negative limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, _, _, out, errb := dlqTestCmd(t)
			if code := cmd.run(context.Background(), tt.args); code != tt.code {
				t.Fatalf("exit %d want %d\n%s%s", code, tt.code, out, errb)
			}
			if !strings.Contains(out.String(), tt.shown) {
				t.Errorf("stdout lacks %q:\n%s", tt.shown, out)
			}
			for _, h := range tt.hidden {
				if strings.Contains(out.String(), h) {
					t.Errorf("stdout shows %q past the limit:\n%s", h, out)
				}
			}
			if tt.errs == "" && errb.Len() > 0 || !strings.Contains(errb.String(), tt.errs) {
				t.Errorf("stderr %q want %q", errb, tt.errs)
			}
		})
	}
}
