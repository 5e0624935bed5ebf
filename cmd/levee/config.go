package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/cmd/internal/console"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	lconfig "github.com/levee-dev/levee/internal/config"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

const configUsage = `usage: levee config check FILE

Validates FILE and reports every problem in it, one per line as
FILE:LINE: KEY: what is wrong (with a suggestion for a misspelled key or
name). A valid file prints the resolved per-handler stacks in canonical
order, warnings (a rate of 0 pauses a handler), a note when telemetry
needs providers or a dedup store: shared its store in code, and every setting with its effective value and source: the
file's line (and the ${VAR} that supplied it), or "default".

Exit status: 0 valid, 1 invalid or unreadable, 2 usage.
`

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

func runConfig(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if isHelp(a) {
			fmt.Fprint(stdout, configUsage)
			return 0
		}
	}
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	return checkConfig(args[1], stdout, stderr)
}

// checkConfig loads the file, decodes the transport section (it belongs
// to adapters, outside the core) and checks every hold against the
// transport's ack deadline, then prints every problem, or the report.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Check(path)
	if cfg == nil {
		fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
		return 1
	}
	errs := []error{err}
	var tc adapters.TransportConfig
	terr := cfg.Transport().Decode(&tc)
	errs = append(errs, terr)
	// So is the console section (levee dlq serve).
	var cc console.Config
	errs = append(errs, cfg.Console().Decode(&cc))
	// The store urls are parsed as levee dlq, levee fleet and the service
	// open them.
	if sc, ok := cfg.Store(); ok {
		errs = append(errs, locate(cfg, "store.url", dlqstore.CheckURL(sc)), locate(cfg, "store.schema", dlqstore.CheckSchema(sc)))
	}
	if fc, ok := cfg.Fleet(); ok {
		errs = append(errs, locate(cfg, "fleet.store", fleetredis.CheckURL(fc.Store)))
	}
	var caps adapters.Capabilities
	if terr == nil {
		errs = append(errs, deadLetterTopics(cfg, tc)...)
		caps = tc.Capabilities()
		// The holds a service refuses: above HoldFraction of the deadline.
		errs = append(errs, holdsError(cfg.CheckMaxHold(service.MaxHold(caps.AckDeadline, config.Deps{})), caps.AckDeadline))
	}
	problems := flatten(errs)
	sort.SliceStable(problems, func(i, j int) bool { return lineOf(problems[i]) < lineOf(problems[j]) })
	if len(problems) > 0 {
		noun := "problem"
		if len(problems) > 1 {
			noun = "problems"
		}
		fmt.Fprintf(stderr, "levee: %s: %d %s\n", termSafe(path, true), len(problems), noun)
		for _, p := range problems {
			fmt.Fprintf(stderr, "%s\n", termSafe(p, true))
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", termSafe(path, true))
	settings := cfg.SectionSettings("transport", tc, transportDefaults(caps))
	printWarnings(stdout, cfg)
	if w := postgresWarning(cfg, tc, settings); w != "" {
		fmt.Fprintf(stdout, "warning: %s\n", termSafe(w, true))
	}
	if !cfg.Transport().IsZero() {
		fmt.Fprintf(stdout, "transport %s: %d in flight per topic, ack deadline %s\n", caps.Kind, caps.MaxInFlight, deadline(caps))
	}
	fmt.Fprint(stdout, termSafe(cfg.Describe(), true))
	settings = append(settings, cfg.Settings()...)
	if !cfg.Console().IsZero() {
		settings = append(settings, cfg.SectionSettings("console", cc, consoleDefaults())...)
	}
	fmt.Fprintln(stdout, "settings (effective value, source):")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, s := range settings {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", termSafe(s.Path, true), termSafe(s.Value, true), termSafe(s.Source, true))
	}
	_ = tw.Flush()
	return 0
}

// deadLetterTopics returns an error for each dlq.topic of the file that
// the transport cannot carry, which service.Run refuses.
func deadLetterTopics(cfg *config.Config, tc adapters.TransportConfig) []error {
	var errs []error
	for _, name := range cfg.HandlerNames() {
		if dc, ok := config.Value[dlq.Config](cfg.Handler(name), "dlq"); ok && dc.Topic != "" {
			errs = append(errs, locate(cfg, "handlers."+name+".dlq.topic", tc.CheckTopic(dc.Topic)))
		}
	}
	return errs
}

// holdsError says, in each of err's problems, where the max hold comes
// from: the share of the ack deadline adapters/service gives the stacks.
func holdsError(err error, deadline time.Duration) error {
	if err == nil {
		return nil
	}
	pct := strconv.FormatFloat(service.HoldFraction*100, 'f', -1, 64) + "%"
	return errors.New(strings.ReplaceAll(err.Error(), "the part of the transport's ack deadline a message may be held)",
		fmt.Sprintf("which adapters/service sets to %s of the transport's ack deadline (%s), so that a held message is Nacked before the broker redelivers it)", pct, deadline)))
}

// locate prefixes err with where the file sets path ("file:line: path: "),
// as the loader's errors are; nil stays nil.
func locate(cfg *config.Config, path string, err error) error {
	if err == nil {
		return nil
	}
	where := cfg.File()
	for _, s := range cfg.Settings() {
		if s.Path == path {
			where, _, _ = strings.Cut(s.Source, ",")
			break
		}
	}
	return fmt.Errorf("%s: %s: %w", where, path, err)
}

var located = regexp.MustCompile(`^[^\n]*?:(\d+): `)

// lineOf returns the line a problem names ("file:12: ..."), or 0.
func lineOf(problem string) int {
	if m := located.FindStringSubmatch(problem); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func deadline(caps adapters.Capabilities) string {
	if caps.AckDeadline == 0 {
		return "none"
	}
	return caps.AckDeadline.String()
}

// flatten returns one line per problem of errs (a config error lists
// several, one per line).
func flatten(errs []error) []string {
	var out []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		// A list of problems (config.Errors, errors.Join) gives one line
		// each; a located problem whose own error is a list (a section's
		// Validate joining several) gives one located line each. errors.As
		// would find the list inside a located problem and drop its
		// location.
		if list, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range list.Unwrap() {
				out = append(out, flatten([]error{e})...)
			}
			continue
		}
		var at *lconfig.Error
		if errors.As(err, &at) {
			if list, ok := at.Err.(interface{ Unwrap() []error }); ok {
				for _, e := range list.Unwrap() {
					out = append(out, flatten([]error{&lconfig.Error{File: at.File, Line: at.Line, Path: at.Path, Err: e}})...)
				}
				continue
			}
		}
		out = append(out, strings.Split(err.Error(), "\n")...)
	}
	return out
}

// transportDefaults is what each key of the transport section means when
// the file leaves it out (the adapters' defaults), for the settings list.
// consoleDefaults gives the meaning of each console key the file leaves
// out (levee dlq serve).
func consoleDefaults() map[string]string {
	return map[string]string{
		"listen":                    console.DefaultListen + " (or --listen)",
		"users":                     "none",
		"tokens":                    "none",
		"trace_link":                "none (the trace ID without a link)",
		"audit_log":                 "standard error",
		"canary.waves":              strings.ReplaceAll(strings.Trim(fmt.Sprint(dlqops.DefaultCanaryWaves()), "[]"), " ", ", "),
		"canary.max_failure_ratio":  "0 (the first failure halts)",
		"canary.wait":               dlqops.DefaultCanaryWait.String(),
		"canary.rate":               strconv.Itoa(console.DefaultCanaryRate) + "/s",
		"login_throttle.burst":      strconv.Itoa(console.DefaultLoginBurst),
		"login_throttle.per_minute": strconv.Itoa(console.DefaultLoginPerMinute),
		"login_throttle.off":        "false",
	}
}

func transportDefaults(caps adapters.Capabilities) map[string]string {
	deadline := "none (kafka, gochannel)"
	if caps.AckDeadline > 0 {
		deadline = caps.AckDeadline.String()
	}
	return map[string]string{
		"kind":                   adapters.KindGoChannel,
		"concurrency":            strconv.Itoa(adapters.DefaultConcurrency),
		"consumer_group":         adapters.DefaultConsumerGroup + " (amqp: none, one queue per topic)",
		"ack_deadline":           deadline,
		"dial_timeout":           adapters.DefaultDialTimeout.String(),
		"gochannel.persistent":   "false",
		"amqp.url":               "required",
		"amqp.max_priority":      "none (plain queues, as watermill-amqp declares them)",
		"amqp.queue_type":        "classic",
		"kafka.brokers":          "required",
		"kafka.partitions":       "concurrency",
		"nats.url":               "required",
		"redis.addr":             "required",
		"redis.username":         "none",
		"redis.password":         "none",
		"redis.db":               "0",
		"postgres.url":           "required",
		"postgres.poll_interval": adapters.DefaultPollInterval.String(),
		"postgres.max_conns":     "8 × concurrency + 4",
		"postgres.delete_on_ack": "false",
	}
}

// printWarnings prints the file's warnings. Whether the service passes
// telemetry providers is decided in its code, which a check of the file
// cannot see: telemetry sections get one note, not a warning each
// (config.Build warns through Deps.Logger for each provider it misses).
// A warning several handlers get word for word is printed once, naming
// the others (foldWarnings).
func printWarnings(stdout io.Writer, cfg *config.Config) {
	withProviders := config.Deps{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
	warnings := cfg.Warnings(withProviders)
	for _, w := range foldWarnings(warnings) {
		fmt.Fprintf(stdout, "warning: %s\n", termSafe(w, true))
	}
	if n := len(cfg.Warnings(config.Deps{})) - len(warnings); n > 0 {
		noun := "sections (tracing, metrics) record"
		if n == 1 {
			noun = "section (tracing, metrics) records"
		}
		fmt.Fprintf(stdout, "note: %d telemetry %s only when the service passes "+
			"config.Deps.TracerProvider and MeterProvider; config.Build warns for each one it misses\n", n, noun)
	}
	if shared := sharedDedup(cfg); len(shared) > 0 {
		fmt.Fprintf(stdout, "note: dedup store: shared (handlers %s) takes its store from config.Deps.DedupStore "+
			"(adapters/redisdedup or adapters/pgdedup), which the service's code gives: config.Build and service.Run fail without one\n",
			termSafe(strings.Join(shared, ", "), true))
	}
}

// sharedDedup returns the handlers whose dedup section says store: shared.
func sharedDedup(cfg *config.Config) []string {
	var names []string
	for _, name := range cfg.HandlerNames() {
		if dc, ok := config.Value[dedup.Config](cfg.Handler(name), "dedup"); ok && dc.Shared() {
			names = append(names, name)
		}
	}
	return names
}
