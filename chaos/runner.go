package chaos

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// MonitorStoreTimeout is the deadline of the run's DLQ store writes: a
// store_stall longer than it makes the monitor Nack dead letters.
const MonitorStoreTimeout = time.Second

// Result is a finished run: the checker's report and what the run saw.
type Result struct {
	Plan      *Plan
	Report    *Report
	Elapsed   time.Duration // from the first publish to the end of the grace period
	Settled   bool          // every message reached its end before MaxRun
	Timeline  []Event
	Spans     int64            // consumer and producer spans ended (real SDK)
	Counters  map[string]int64 // Levee counters read from the SDK meter provider
	Transport string
	// RunID names what the run created on shared servers (topics
	// chaos_<RunID>_..., store prefix levee_chaos_<RunID>), all deleted
	// when the run ends.
	RunID string
}

// Failed reports whether the run broke a promise or did not settle.
func (r *Result) Failed() bool { return !r.Settled || r.Report.Failed() }

// Print writes the report: the checker's table, deliveries per message,
// the time, the telemetry and the per-fault timeline.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "chaos run: %d messages over %s, seed %d, store %s, %s\n", r.Plan.Messages, r.Transport,
		r.Plan.Seed, r.Plan.Store, r.Elapsed.Round(time.Millisecond))
	if r.Elapsed > 0 {
		fmt.Fprintf(w, "throughput: %.0f messages/s\n", float64(r.Report.Sent)/r.Elapsed.Seconds())
	}
	if !r.Settled {
		fmt.Fprintf(w, "NOT SETTLED within max_run %s\n", r.Plan.MaxRun)
	}
	fmt.Fprintln(w)
	r.Report.Print(w)
	fmt.Fprintf(w, "\ntelemetry (real SDK providers): %d spans ended\n", r.Spans)
	for _, n := range counterNames {
		fmt.Fprintf(w, "  %-34s %d\n", n, r.Counters[n])
	}
	fmt.Fprintln(w, "\ntimeline:")
	printTimeline(w, r.Timeline)
}

var counterNames = []string{"levee.dlq.dead_letters", "levee.dlq.retries", "levee.dlq.retries_deferred",
	"levee.dlq.deferrals", "levee.dlq.publish_failures", "levee.priority.shed", "levee.breaker.transitions", "levee.dedup.duplicates", "levee.dedup.claims.waited", "levee.dedup.lease.expiries"}

// Run runs the plan: it builds the stack from the plan's stack file over
// the plan's transport, sends the messages, injects the faults, waits for
// every message to settle (or MaxRun), and checks the ledger. Progress
// lines go to log (may be nil).
func Run(ctx context.Context, p *Plan, log io.Writer) (*Result, error) {
	if log == nil {
		log = io.Discard
	}
	r := &run{p: p, log: log, logger: watermill.NopLogger{}, runID: strings.ToLower(watermill.NewShortUUID()[:8])}
	if p.ConsumerProcess {
		r.role = roleRunner
	}
	defer r.close()
	for _, step := range []func(context.Context) error{r.prepare, r.openTransport, r.openStore, r.buildRouter} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return r.execute(ctx)
}

func hasFault(p *Plan, kind string) bool {
	for _, f := range p.Faults {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

// stackMaxAttempts reads max attempts from the stack's dlq sections; both
// handlers must be configured and agree.
func stackMaxAttempts(cfg *config.Config) (int, error) {
	var got []int
	for _, h := range []string{HandlerName, BatchHandlerName} {
		hc := cfg.Handler(h)
		if hc == nil {
			return 0, fmt.Errorf("%w: %s configures no handler %q", ErrPlan, cfg.File(), h)
		}
		dc, ok := config.Value[dlq.Config](hc, "dlq")
		if !ok {
			return 0, fmt.Errorf("%w: %s: handler %q has no dlq section", ErrPlan, cfg.File(), h)
		}
		got = append(got, dc.Retry.Backoff().MaxAttempts)
	}
	if got[0] != got[1] {
		return 0, fmt.Errorf("%w: %s: handlers %q and %q must have the same max_attempts (%d, %d)", ErrPlan, cfg.File(),
			HandlerName, BatchHandlerName, got[0], got[1])
	}
	return got[0], nil
}

// waitSettled polls the ledger until every message settled and every
// fault ended, or MaxRun passes, or the producer fails.
func waitSettled(ctx context.Context, p *Plan, l *Ledger, start time.Time, prodErr <-chan error, log io.Writer) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(p.MaxRun)
	defer deadline.Stop()
	lastLog := time.Now()
	produced := false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case err := <-prodErr:
			if err != nil {
				fmt.Fprintf(log, "producer: %v\n", err)
				return false
			}
			produced = true
		case <-tick.C:
			settled, pending := l.Progress()
			if time.Since(lastLog) >= 5*time.Second {
				lastLog = time.Now()
				fmt.Fprintf(log, "  %6s settled %d/%d, replays pending %d\n", time.Since(start).Round(time.Second), settled, p.Messages, pending)
			}
			if produced && settled == p.Messages && pending == 0 && time.Since(start) >= p.lastFaultEnd() {
				return true
			}
		}
	}
}

// listStore records every row of the DLQ store in the ledger.
func listStore(ctx context.Context, s dlqops.Store, l *Ledger, c *consumer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := s.List(ctx, dlqops.Filter{})
	if err != nil {
		return err
	}
	for _, r := range rows {
		msg := message.NewMessage(r.UUID, r.Payload)
		msg.Metadata = r.Metadata
		id, gen, ok := c.identify(msg, "store row")
		if !ok {
			continue
		}
		l.StoreRow(id, gen, r.Attempts, r.ErrorClass, string(r.Status))
	}
	return nil
}
