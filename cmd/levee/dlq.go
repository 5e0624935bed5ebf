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
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/dlq"
	lconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/middleware"
)

const dlqUsage = `usage: levee dlq [--config levee.yaml] [--json] COMMAND [flags]

commands:
  groups   [--by fingerprint|topic|handler] [--window 1h] [selection]
  list     [selection]
  show     ID
  replay   [selection] [--rate 50/s] [--max-replays 3] [--dry-run] [--force]
           [--allow-topic T]...   (needs a selector, or --all; default topics:
                                    store.replay_topics, else a letter from
                                    T.dlq goes back to T only)
  archive  [selection]          (needs a selector, or --all)
  prune    [--max-age 720h] [--max-count N] [--dry-run] [--force]
           (default: store.retention; a max age under 1h needs --force)

selection: [--group G] [--topic T] [--handler H] [--id ID]... [--status new]
           [--since 2h|RFC3339] [--until 10m|RFC3339] [--limit N]

The store and the transport come from the config file (store: and
transport: sections). Exit status: 0 ok, 1 failure (store or broker
unreachable, replay failed), 2 usage.
`

// dlqCmd runs `levee dlq`. The open* funcs are seams for tests.
type dlqCmd struct {
	stdout, stderr io.Writer
	configPath     string
	jsonOut        bool
	now            func() time.Time

	openStore     func(ctx context.Context, c dlq.StoreConfig) (dlq.Store, func() error, error)
	openPublisher func(ctx context.Context, cfg *middleware.Config) (message.Publisher, func() error, error)
}

// runDLQ implements `levee dlq ...`; main dispatches `case "dlq"` to it.
func runDLQ(args []string, stdout, stderr io.Writer) int {
	c := &dlqCmd{stdout: stdout, stderr: stderr, now: time.Now,
		openStore:     dlqstore.FromConfig,
		openPublisher: openTransportPublisher,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return c.run(ctx, args)
}

// usageError is a command-line mistake (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func (c *dlqCmd) run(ctx context.Context, args []string) int {
	global := flag.NewFlagSet("levee dlq", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.commonFlags(global)
	if err := global.Parse(args); err != nil {
		return c.fail(usageError{err.Error()})
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
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, dlqUsage)
		return 0
	default:
		err = usagef("unknown command %q", cmd)
	}
	return c.fail(err)
}

func (c *dlqCmd) fail(err error) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(c.stderr, "levee dlq: %s\n%s", termSafe(ue.msg, true), dlqUsage)
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
		if err := fs.Parse(args); err != nil {
			return nil, usageError{fs.Name() + ": " + err.Error()}
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

func (c *dlqCmd) filter(s *selection) (dlq.Filter, error) {
	f := dlq.Filter{Group: s.group, Topic: s.topic, Handler: s.handler, IDs: s.ids, Limit: s.limit}
	if s.status != "" {
		st, err := dlq.ParseStatus(s.status)
		if err != nil {
			return f, usageError{err.Error()}
		}
		f.Statuses = []dlq.Status{st}
	}
	var err error
	if f.Since, err = c.parseTime("since", s.since); err != nil {
		return f, err
	}
	if f.Until, err = c.parseTime("until", s.until); err != nil {
		return f, err
	}
	if err := f.Validate(); err != nil {
		return f, usageError{err.Error()}
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
func (c *dlqCmd) loadConfig() (*middleware.Config, dlq.StoreConfig, error) {
	var sc dlq.StoreConfig
	cfg, err := middleware.LoadConfig(c.configPath)
	if err != nil {
		return nil, sc, err
	}
	raw, ok := cfg.Shared["store"][""]
	if !ok {
		return nil, sc, fmt.Errorf("%s: no store section; the CLI needs `store: {kind: postgres|redis, url: ...}`", c.configPath)
	}
	if err := raw.Decode(&sc); err != nil {
		return nil, sc, err
	}
	if sc.StoreKind() == dlq.StoreKindMemory {
		return nil, sc, fmt.Errorf("%s: store kind memory lives inside the service process; the CLI needs a shared store (kind: postgres or redis)", c.configPath)
	}
	return cfg, sc, nil
}

func (c *dlqCmd) store(ctx context.Context) (*middleware.Config, dlq.StoreConfig, dlq.Store, func() error, error) {
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
func openTransportPublisher(ctx context.Context, cfg *middleware.Config) (message.Publisher, func() error, error) {
	var tc adapters.TransportConfig
	if !cfg.Transport.IsZero() {
		if err := cfg.Transport.Decode(&tc); err != nil {
			return nil, nil, err
		}
	}
	if tc.Kind == "" || tc.Kind == adapters.KindGoChannel {
		return nil, nil, fmt.Errorf("%s: transport kind gochannel is in-process; replaying from the CLI needs a broker transport", cfg.File)
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
func replayValidator(cfg *middleware.Config) (dlq.Validator, error) {
	if cfg.Schemas == nil {
		return nil, nil
	}
	return cfg.Schemas.Validate, nil
}

func (c *dlqCmd) groups(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("groups", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	by := fs.String("by", "fingerprint", "group by fingerprint, topic or handler")
	window := fs.Duration("window", time.Hour, "count arrivals within this window")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("groups takes no arguments, got %q", pos)
	}
	gb, err := dlq.ParseGroupBy(*by)
	if err != nil {
		return usageError{err.Error()}
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
	now := c.now()
	groups, err := s.Groups(ctx, dlq.GroupQuery{By: gb, Filter: f, WindowStart: now.Add(-*window)})
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(c.stdout, groups)
	}
	writeGroups(c.stdout, groups, *window, now)
	return nil
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

func (c *dlqCmd) replay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	rate := fs.String("rate", "50/s", "velocity limit (200/s, 5/min; 0 for none)")
	maxReplays := fs.Int("max-replays", dlq.DefaultMaxReplays, "a letter replayed this often stays dead")
	dry := fs.Bool("dry-run", false, "report what would be replayed; change nothing")
	force := fs.Bool("force", false, "replay letters already replayed, again")
	all := fs.Bool("all", false, "replay every new letter matching no selector")
	var allow multiFlag
	fs.Var(&allow, "allow-topic", "a topic replays may publish to (repeatable; added to store.replay_topics)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("replay takes no arguments, got %q", pos)
	}
	if sel.empty() && !*all {
		return usagef("replay needs a selector (--group, --topic, --handler, --id, --since/--until) or --all")
	}
	if sel.status != "" {
		return usagef("replay selects new letters (and replayed ones with --force); --status does not apply")
	}
	r, err := lconfig.ParseRate(*rate)
	if err != nil {
		return usagef("--rate: %v", err)
	}
	if *maxReplays < 1 {
		return usagef("--max-replays must be at least 1")
	}
	f, err := c.filter(&sel)
	if err != nil {
		return err
	}
	cfg, sc, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	topics := append(append([]string(nil), sc.ReplayTopics...), allow...)
	var pub message.Publisher
	if !*dry {
		p, closePub, err := c.openPublisher(ctx, cfg)
		if err != nil {
			return err
		}
		defer closePub()
		pub = p
	}
	last := time.Time{}
	progress := func(p dlq.ReplayProgress) {
		if *dry {
			return
		}
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(c.stderr, "replay: %s\n", progressLine(p))
		}
	}
	validator, err := replayValidator(cfg)
	if err != nil {
		return err
	}
	rp, err := dlq.NewReplayer(s, pub, dlq.WithReplayRate(r), dlq.WithMaxReplays(*maxReplays),
		dlq.WithReplayProgress(progress), dlq.WithReplayValidator(validator), dlq.WithReplayTopics(topics...))
	if err != nil {
		return usageError{err.Error()}
	}
	rep, runErr := rp.Replay(ctx, dlq.ReplaySelection{Filter: f, DryRun: *dry, Force: *force})
	if !*dry {
		fmt.Fprintf(c.stderr, "replay: %s, done\n", progressLine(dlq.ReplayProgress{Processed: rep.Processed,
			Replayed: rep.Replayed, Held: rep.Held, Failed: rep.Failed, Elapsed: rep.Elapsed}))
	}
	if c.jsonOut {
		if err := writeJSON(c.stdout, jsonReport(rep, runErr)); err != nil {
			return err
		}
	} else {
		writeReport(c.stdout, rep)
	}
	if runErr != nil {
		return fmt.Errorf("replay stopped: %w", runErr)
	}
	if rep.Failed > 0 {
		return fmt.Errorf("%d replays failed", rep.Failed)
	}
	return nil
}

func progressLine(p dlq.ReplayProgress) string {
	rate := "-"
	if p.Elapsed >= 100*time.Millisecond {
		rate = fmt.Sprintf("%.1f", float64(p.Replayed)/p.Elapsed.Seconds())
	}
	return fmt.Sprintf("%d processed: %d replayed, %d held, %d failed (%s msg/s, %s)",
		p.Processed, p.Replayed, p.Held, p.Failed, rate, p.Elapsed.Round(time.Millisecond))
}

func (c *dlqCmd) archive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	all := fs.Bool("all", false, "archive every letter matching no selector")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	sel.ids = append(sel.ids, pos...) // `archive ID...` works too
	if sel.empty() && !*all {
		return usagef("archive needs a selector (--group, --topic, --handler, --id, --since/--until, or IDs) or --all")
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
	n, err := s.SetStatus(ctx, f, dlq.StatusArchived)
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(c.stdout, map[string]int{"archived": n})
	}
	fmt.Fprintf(c.stdout, "archived %d dead letters\n", n)
	return nil
}

// minPruneAge is the youngest max age `levee dlq prune` applies without
// --force: a shorter one deletes letters that failed moments ago, before
// anyone looked at them (the issue: --max-age 1s emptied the store).
const minPruneAge = time.Hour

func (c *dlqCmd) prune(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prune", flag.ContinueOnError)
	c.commonFlags(fs)
	maxAge := fs.Duration("max-age", -1, "delete letters that failed longer ago (default: store.retention.max_age)")
	maxCount := fs.Int("max-count", -1, "keep at most N letters (default: store.retention.max_count)")
	dry := fs.Bool("dry-run", false, "report what would be deleted; delete nothing")
	force := fs.Bool("force", false, "accept a max age under "+shortDur(minPruneAge))
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("prune takes no arguments")
	}
	_, sc, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	ret := sc.Retention.Policy()
	ageFrom := "store.retention.max_age"
	if *maxAge >= 0 {
		ret.MaxAge, ageFrom = *maxAge, "--max-age"
	}
	if *maxCount >= 0 {
		ret.MaxCount = *maxCount
	}
	if ret.MaxAge == 0 && ret.MaxCount == 0 {
		return usagef("prune: no retention configured (store.retention, --max-age, --max-count)")
	}
	if ret.MaxAge > 0 && ret.MaxAge < minPruneAge && !*force {
		return usagef("prune: %s %s is under %s and would delete letters that just failed; check with --dry-run, then add --force",
			ageFrom, ret.MaxAge, shortDur(minPruneAge))
	}
	now := c.now()
	if *dry {
		p, err := dlq.PreviewPrune(ctx, s, ret, now)
		if err != nil {
			return err
		}
		if c.jsonOut {
			return writeJSON(c.stdout, struct {
				DryRun      bool `json:"dry_run"`
				WouldDelete int  `json:"would_delete"`
				dlq.PrunePreview
			}{true, p.Total(), p})
		}
		writePrunePreview(c.stdout, p, ret)
		return nil
	}
	n, err := s.Prune(ctx, ret, now)
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(c.stdout, map[string]int{"deleted": n})
	}
	fmt.Fprintf(c.stdout, "deleted %d dead letters\n", n)
	return nil
}
