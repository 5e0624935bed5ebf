package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	lconfig "github.com/levee-dev/levee/internal/config"
)

const dlqUsage = `usage: levee dlq [--config levee.yaml] [--json] COMMAND [flags]

commands:
  groups   [--by fingerprint|topic|handler] [--order count|newest] [--window 1h]
           [selection]
  list     [selection]
  show     ID
  replay   [selection] [--rate 50/s] [--max-replays 3] [--dry-run] [--force]
           [--canary [--waves 1,2,5,20,50,100] [--max-failure-ratio 0]
           [--wait 30s]]
           [--new-identity] [--dedup-store URL [--dedup-name N]]
           [--allow-topic T]...   (needs a selector, or --all; takes new
                                    letters, replayed ones with --force, so
                                    not --status; default topics:
                                    store.replay_topics, else a letter from
                                    T.dlq goes back to T only)
  archive  [selection]          (needs a selector, or --all)
  prune    [--max-age D] [--max-count N] [--dry-run] [--force]
           (default: store.retention; a max age under 1h needs --force, but for --dry-run)
  serve    [--listen 127.0.0.1:8080] [--insecure-loopback] [--no-replay]
           the dead-letter console in the browser (console: section)

selection: [--group G] [--topic T] [--handler H] [--id ID]...
           [--status new|replayed|archived]
           [--since 2h|RFC3339] [--until 10m|RFC3339] [--limit N]

The store, the transport and the schemas a replay re-validates payloads
with come from the config file (store:, transport: and schemas:
sections): give it the service's own file. levee dlq COMMAND -h lists
the command's flags with their defaults. Exit status: 0 ok, 1 failure (store or broker
unreachable, no dead letter with that ID, replay failed, interrupted), 2 usage.
`

// dlqCmd runs `levee dlq`. The open* funcs are seams for tests.
type dlqCmd struct {
	stdout, stderr io.Writer
	configPath     string
	jsonOut        bool
	now            func() time.Time

	openStore     func(ctx context.Context, c dlqops.StoreConfig) (dlqops.Store, func() error, error)
	openPublisher func(ctx context.Context, cfg *config.Config) (message.Publisher, func() error, error)
}

// runDLQ implements `levee dlq ...`; main dispatches `case "dlq"` to it.
func runDLQ(args []string, stdout, stderr io.Writer) int {
	c := &dlqCmd{stdout: stdout, stderr: stderr, now: time.Now,
		openStore:     dlqstore.FromConfig,
		openPublisher: openTransportPublisher,
	}
	return c.runUntilStopped(args)
}

// stopSignals stop a `levee dlq` command as Ctrl-C does: a replay marks
// the letter it is publishing and stops, the console shuts down. SIGTERM
// is how a job runner, systemd or Kubernetes stops a process; before, it
// killed the command as a crash would.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// runUntilStopped is run with a context that ends at the first of
// stopSignals.
func (c *dlqCmd) runUntilStopped(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	return c.run(ctx, args)
}

// usageError is a command-line mistake (exit status 2), or a request for
// help (flag.ErrHelp as err: usage on stdout, exit status 0).
type usageError struct {
	msg   string
	err   error
	flags string // for -h on a command: its flags and their defaults
	cmd   string // the command it happened in ("" before one, or unknown)
}

func (e usageError) Error() string { return e.msg }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{msg: fmt.Sprintf(format, args...)} }

func (c *dlqCmd) run(ctx context.Context, args []string) int {
	global := flag.NewFlagSet("levee dlq", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.commonFlags(global)
	if err := global.Parse(args); err != nil {
		return c.fail(usageError{msg: err.Error(), err: err})
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprint(c.stderr, dlqUsage)
		return 2
	}
	var err error
	switch cmd, cargs := rest[0], rest[1:]; cmd {
	case "groups":
		err = c.groups(ctx, cargs)
	case "list":
		err = c.list(ctx, cargs)
	case "show":
		err = c.show(ctx, cargs)
	case "replay":
		err = c.replay(ctx, cargs)
	case "archive":
		err = c.archive(ctx, cargs)
	case "prune":
		err = c.prune(ctx, cargs)
	case "serve":
		err = c.serve(ctx, cargs)
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, dlqUsage)
		return 0
	default:
		err = usagef("unknown command %q", cmd)
		return c.fail(err)
	}
	if ue := (usageError{}); errors.As(err, &ue) && !errors.Is(err, flag.ErrHelp) {
		ue.cmd = rest[0]
		err = ue
	}
	return c.fail(err)
}

func (c *dlqCmd) fail(err error) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(c.stdout, dlqUsage)
		if errors.As(err, &ue) && ue.flags != "" {
			fmt.Fprintf(c.stdout, "\nflags of %s:\n%s", ue.msg, ue.flags)
		}
		return 0
	}
	if errors.As(err, &ue) {
		fmt.Fprintf(c.stderr, "levee dlq: %s\n%s", termSafe(ue.msg, true), shortUsage(ue.cmd))
		return 2
	}
	fmt.Fprintf(c.stderr, "levee dlq: %s\n", termSafe(err.Error(), true))
	return 1
}

func (c *dlqCmd) commonFlags(fs *flag.FlagSet) {
	if c.configPath == "" {
		c.configPath = "levee.yaml"
	}
	fs.StringVar(&c.configPath, "config", c.configPath, "configuration file")
	fs.BoolVar(&c.jsonOut, "json", c.jsonOut, "print JSON instead of tables")
}

// parse parses flags and positionals in any order.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			var b strings.Builder
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return nil, usageError{msg: fs.Name(), err: err, flags: b.String()}
		} else if err != nil {
			return nil, usageError{msg: fs.Name() + ": " + err.Error(), err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// selection holds the selector flags.
type selection struct {
	group, topic, handler, status, since, until string
	ids                                         multiFlag
	limit                                       int
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (s *selection) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.group, "group", "", "failure group (fingerprint, or \"unknown\")")
	fs.StringVar(&s.topic, "topic", "", "original topic")
	fs.StringVar(&s.handler, "handler", "", "handler name")
	fs.Var(&s.ids, "id", "dead letter id (repeatable)")
	fs.StringVar(&s.status, "status", "", "new, replayed or archived")
	fs.StringVar(&s.since, "since", "", "failed at or after: a duration ago (2h) or an RFC 3339 time")
	fs.StringVar(&s.until, "until", "", "failed before: a duration ago or an RFC 3339 time")
	fs.IntVar(&s.limit, "limit", 0, "at most N letters (0: all)")
}

func (s *selection) empty() bool {
	return s.group == "" && s.topic == "" && s.handler == "" && len(s.ids) == 0 && s.since == "" && s.until == ""
}

func (c *dlqCmd) filter(s *selection) (dlqops.Filter, error) {
	f := dlqops.Filter{Group: s.group, Topic: s.topic, Handler: s.handler, IDs: s.ids, Limit: s.limit}
	if s.status != "" {
		st, err := dlqops.ParseStatus(s.status)
		if err != nil {
			return f, usageError{msg: err.Error(), err: err}
		}
		f.Statuses = []dlqops.Status{st}
	}
	var err error
	if f.Since, err = c.parseTime("since", s.since); err != nil {
		return f, err
	}
	if f.Until, err = c.parseTime("until", s.until); err != nil {
		return f, err
	}
	if err := f.Validate(); err != nil {
		return f, usageError{msg: err.Error(), err: err}
	}
	return f, nil
}

func (c *dlqCmd) parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := lconfig.ParseDuration(v); err == nil {
		return c.now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usagef("--%s %q: want a duration (2h) or an RFC 3339 time", name, v)
	}
	return t, nil
}

// loadConfig reads the config file and its store section.
func (c *dlqCmd) loadConfig() (*config.Config, dlqops.StoreConfig, error) {
	var sc dlqops.StoreConfig
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return nil, sc, err
	}
	sc, ok := cfg.Store()
	if !ok {
		return nil, sc, fmt.Errorf("%s: no store section; the CLI needs `store: {kind: postgres|redis, url: ...}`", c.configPath)
	}
	if sc.StoreKind() == dlqops.StoreKindMemory {
		return nil, sc, fmt.Errorf("%s: store kind memory lives inside the service process; the CLI needs a shared store (kind: postgres or redis)", c.configPath)
	}
	return cfg, sc, nil
}

func (c *dlqCmd) store(ctx context.Context) (*config.Config, dlqops.StoreConfig, dlqops.Store, func() error, error) {
	cfg, sc, err := c.loadConfig()
	if err != nil {
		return nil, sc, nil, nil, err
	}
	s, closeFn, err := c.openStore(ctx, sc)
	if err != nil {
		return nil, sc, nil, nil, fmt.Errorf("store unreachable: %w", err)
	}
	return cfg, sc, s, closeFn, nil
}

// openTransportPublisher builds the transport section's publisher.
func openTransportPublisher(ctx context.Context, cfg *config.Config) (message.Publisher, func() error, error) {
	var tc adapters.TransportConfig
	if err := cfg.Transport().Decode(&tc); err != nil {
		return nil, nil, err
	}
	if tc.Kind == "" || tc.Kind == adapters.KindGoChannel {
		what := "transport kind gochannel is in-process"
		if cfg.Transport().IsZero() {
			what = "no transport: section, so the transport is gochannel, in-process"
		}
		return nil, nil, fmt.Errorf("%s: %s; a replay from the CLI publishes to the broker the service consumes from: "+
			"give the file the service's transport: section (kind amqp, kafka, nats, redis or postgres, docs/TRANSPORTS.md)",
			cfg.File(), what)
	}
	t, err := adapters.Build(ctx, tc, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("broker unreachable: %w", err)
	}
	return t.Publisher, t.Close, nil
}

// replayValidator returns the file's schemas (the top-level schemas:
// section, topic -> JSON Schema file), so a replay re-validates each
// payload against the schema of its original topic. Nil when there are none.
func replayValidator(cfg *config.Config) (dlqops.Validator, error) {
	if cfg.Schemas() == nil {
		return nil, nil
	}
	return cfg.Schemas().Validate, nil
}

func (c *dlqCmd) list(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("list takes no arguments, got %q", pos)
	}
	f, err := c.filter(&sel)
	if err != nil {
		return err
	}
	_, _, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	letters, err := s.List(ctx, f)
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(c.stdout, letters)
	}
	writeList(c.stdout, letters)
	return nil
}

func (c *dlqCmd) show(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	c.commonFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("show takes one dead letter ID")
	}
	_, _, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	dl, err := s.Get(ctx, pos[0])
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(c.stdout, dl)
	}
	writeShow(c.stdout, dl)
	return nil
}
