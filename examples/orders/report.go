package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/priority"
)

// metaPublishedAt carries the publish time (Unix nanoseconds) so the report
// can show how long messages waited before their first handler call.
const metaPublishedAt = "published_at"

// handlerStats counts one handler's outcomes.
type handlerStats struct {
	deliveries int // deliveries from the transport, redeliveries included
	acked      int // deliveries that ended in an ack (processed or dead-lettered)
	nacked     int // deliveries that ended in a Nack (redelivered)
	attempts   int // calls of the handler's own code (retries included)
	failed     int // attempts that returned an error (retried, or dead-lettered)
	processed  int // distinct messages the handler's code processed successfully
	deadLet    int // messages published to this handler's dead-letter topic
	ok         map[string]bool
	waits      []time.Duration
	waitByPri  map[string][]time.Duration
}

// Tracker observes every handler from the outermost router middleware and
// signals when the run is complete.
type Tracker struct {
	mu       sync.Mutex // guards everything below
	handlers map[string]*handlerStats
	changed  chan struct{}
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{handlers: map[string]*handlerStats{}, changed: make(chan struct{})}
}

func (t *Tracker) statsLocked(name string) *handlerStats {
	s := t.handlers[name]
	if s == nil {
		s = &handlerStats{ok: map[string]bool{}, waitByPri: map[string][]time.Duration{}}
		t.handlers[name] = s
	}
	return s
}

func (t *Tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// Middleware records calls, results and latency per handler. Add it
// to the router before the Levee stacks so it sees final results.
func (t *Tracker) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		name := message.HandlerNameFromCtx(msg.Context())
		if strings.HasPrefix(name, "dlq-watch-") {
			return next(msg)
		}
		t.mu.Lock()
		s := t.statsLocked(name)
		s.deliveries++
		t.mu.Unlock()

		out, err := next(msg)
		// The router publishes produced messages after we return; stamp
		// them here so downstream waits are measured from now.
		for _, m := range out {
			m.Metadata.Set(metaPublishedAt, strconv.FormatInt(time.Now().UnixNano(), 10))
		}

		t.mu.Lock()
		if err != nil {
			s.nacked++
		} else {
			s.acked++
		}
		if err == nil && s.ok[msg.UUID] {
			// Latency: from publish to success, every wait included
			// (breaker pause, priority, rate limit, retries).
			if ns, perr := strconv.ParseInt(msg.Metadata.Get(metaPublishedAt), 10, 64); perr == nil {
				w := time.Since(time.Unix(0, ns))
				s.waits = append(s.waits, w)
				pri := msg.Metadata.Get(levee.KeyPriority)
				if pri == "" {
					pri = "0"
				}
				s.waitByPri[pri] = append(s.waitByPri[pri], w)
			}
		}
		t.notifyLocked()
		t.mu.Unlock()
		return out, err
	}
}

// Handler wraps the code of handler name (innermost, inside the Levee
// stack) to count attempts, failures and successes.
func (t *Tracker) Handler(name string, h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		t.mu.Lock()
		s := t.statsLocked(name)
		s.attempts++
		if err != nil {
			s.failed++
		} else if !s.ok[msg.UUID] {
			s.ok[msg.UUID] = true
			s.processed++
		}
		t.notifyLocked()
		t.mu.Unlock()
		return out, err
	}
}

// Consumer is Handler for a handler that publishes nothing.
func (t *Tracker) Consumer(name string, h message.HandlerFunc) message.NoPublishHandlerFunc {
	wrapped := t.Handler(name, h)
	return func(msg *message.Message) error {
		_, err := wrapped(msg)
		return err
	}
}

// DeadLetterHandler counts a dead letter for the handler that gave up on it.
func (t *Tracker) DeadLetterHandler(msg *message.Message) error {
	d := dlq.ParseDeadLetter(msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.statsLocked(d.Handler).deadLet++
	t.notifyLocked()
	return nil
}

// Settled returns how many messages handler has finished (processed or
// dead-lettered) and how many it processed successfully.
func (t *Tracker) Settled(handler string) (settled, processed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.statsLocked(handler)
	return s.processed + s.deadLet, s.processed
}

// Wait blocks until cond holds, or until timeout; it reports whether cond
// held.
func (t *Tracker) Wait(cond func() bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// Print writes the per-handler report.
func (t *Tracker) Print(w io.Writer, order []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(w, "%-14s %9s %5s %9s %9s %10s %7s %9s %9s\n",
		"handler", "processed", "dead", "attempts", "failed", "deliveries", "nacked", "lat p50", "lat p99")
	for _, name := range order {
		s := t.statsLocked(name)
		fmt.Fprintf(w, "%-14s %9d %5d %9d %9d %10d %7d %9s %9s\n", name, s.processed, s.deadLet, s.attempts, s.failed,
			s.deliveries, s.nacked, percentile(s.waits, 0.5).Round(time.Millisecond), percentile(s.waits, 0.99).Round(time.Millisecond))
	}
	fmt.Fprintln(w, "(attempts: calls of the handler's code; failed: attempts that returned an error and were retried or\n dead-lettered by the dlq slot; deliveries/nacked: what the transport delivered and got back)")
}

// PrintPriorityWaits writes p50/p99 latency (publish to success) per
// priority for handler.
func (t *Tracker) PrintPriorityWaits(w io.Writer, handler string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.statsLocked(handler)
	var pris []string
	for p := range s.waitByPri {
		pris = append(pris, p)
	}
	sort.Slice(pris, func(i, j int) bool {
		a, _ := strconv.Atoi(pris[i])
		b, _ := strconv.Atoi(pris[j])
		return a > b
	})
	for _, p := range pris {
		ws := s.waitByPri[p]
		fmt.Fprintf(w, "  priority %-3s n=%-5d latency p50 %-8s p99 %s\n", p, len(ws),
			percentile(ws, 0.5).Round(time.Millisecond), percentile(ws, 0.99).Round(time.Millisecond))
	}
}

// report writes the run's report: the handlers' table, the payments
// latency by priority and the scheduler's waits, the outage table (with
// -outage) and this run's dead-letter groups.
func (d *demo) report(ctx context.Context, total int, tl *timeline) error {
	elapsed, caps, out, o := time.Since(d.start), d.tr.Capabilities, d.out, d.o
	fmt.Fprintf(out, "orders demo over %s (%d in flight per topic): %d orders (%d malformed, %d with a bad phone) in %s\n\n",
		caps.Kind, caps.MaxInFlight, total, o.malformed, o.badPhones, elapsed.Round(time.Millisecond))
	d.tracker.Print(out, handlerNames)
	fmt.Fprintln(out, "\npayments latency by priority (publish to paid; VIP orders have priority 9):")
	d.tracker.PrintPriorityWaits(out, "payments")
	if s, ok := d.applied.Scheduler("payments"); ok {
		printScheduler(out, s)
	}
	if o.outage > 0 {
		fmt.Fprintf(out, "\npayments per second (gateway outage %s from %s after its first call):\n", o.outage, o.outageAfter)
		tl.print(out, d.gateway.CallsPerSecond(d.start))
	}
	// A shared store keeps earlier runs' letters: this run's failed at or
	// after start.
	fmt.Fprintf(out, "\ndead-letter groups of this run (dlqops.Monitor -> %s store):\n", d.sc.StoreKind())
	if err := printGroups(ctx, out, d.store, d.start); err != nil {
		return err
	}
	if hint := storeHint(d.sc, d.tc, o.keep); hint != "" {
		fmt.Fprint(out, hint)
	}
	return nil
}

// finish writes the report's last lines once the router stopped (SMS
// sent, units reserved, PostgreSQL rows), keeps serving metrics for
// -linger, and fails a run that did not settle.
func (d *demo) finish(ctx context.Context, settled bool) error {
	out := d.out
	count, rate := d.sms.Rate()
	fmt.Fprintf(out, "\nSMS sent: %d (achieved %.1f/s); units reserved: %d\n", count, rate, d.inventory.Total())
	d.reportDedup(out)
	if d.pg != nil {
		rows, lines, err := d.pg.Rows(ctx)
		if err != nil {
			return fmt.Errorf("counting PostgreSQL rows: %w", err)
		}
		dup, err := d.pg.DuplicatedLines(ctx)
		if err != nil {
			return fmt.Errorf("counting PostgreSQL rows: %w", err)
		}
		fmt.Fprintf(out, "PostgreSQL rows for this run: %d (order lines written: %d, written twice: %d)\n", rows, lines, dup)
		if rows != lines || dup != 0 {
			return fmt.Errorf("PostgreSQL holds %d rows for %d order lines, %d of them twice", rows, lines, dup)
		}
	}
	if d.tel.addr != "" && d.o.linger > 0 {
		fmt.Fprintf(out, "serving metrics for %s more\n", d.o.linger)
		linger := time.NewTimer(d.o.linger)
		select {
		case <-linger.C:
		case <-ctx.Done(): // the caller ended the run early
			linger.Stop()
		}
	}
	if !settled {
		return fmt.Errorf("run did not settle within %s", d.o.maxRun)
	}
	return nil
}

// printScheduler prints the payments scheduler's own wait figures.
func printScheduler(w io.Writer, s *priority.Scheduler) {
	st := s.Stats()
	fmt.Fprintf(w, "gateway scheduler: %s\n", s)
	for p := len(st.Levels) - 1; p >= 0; p-- {
		l := st.Levels[p]
		if l.Granted == 0 {
			continue
		}
		fmt.Fprintf(w, "  priority %d: %d granted, slot wait p50 %s p99 %s\n", p, l.Granted,
			l.Wait.Quantile(0.5).Round(time.Millisecond), l.Wait.Quantile(0.99).Round(time.Millisecond))
	}
}
