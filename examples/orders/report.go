package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// metaPublishedAt carries the publish time (Unix nanoseconds) so the report
// can show how long messages waited before their first handler call.
const metaPublishedAt = "published_at"

// handlerStats counts one handler's outcomes.
type handlerStats struct {
	calls     int // handler invocations, redeliveries and retries included
	acked     int // distinct messages finished successfully
	nacked    int // failed results returned to the router
	deadLet   int // messages published to this handler's dead-letter topic
	retried   int // messages that needed more than one call
	seen      map[string]int
	waits     []time.Duration
	waitByPri map[string][]time.Duration
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
		s = &handlerStats{seen: map[string]int{}, waitByPri: map[string][]time.Duration{}}
		t.handlers[name] = s
	}
	return s
}

func (t *Tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// Middleware records calls, results and first-call wait per handler. Add it
// to the router before the Levee stacks so it sees final results.
func (t *Tracker) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		name := message.HandlerNameFromCtx(msg.Context())
		t.mu.Lock()
		s := t.statsLocked(name)
		s.calls++
		s.seen[msg.UUID]++
		if s.seen[msg.UUID] == 1 {
			if ns, err := strconv.ParseInt(msg.Metadata.Get(metaPublishedAt), 10, 64); err == nil {
				w := time.Since(time.Unix(0, ns))
				s.waits = append(s.waits, w)
				pri := msg.Metadata.Get("levee_priority")
				if pri == "" {
					pri = "0"
				}
				s.waitByPri[pri] = append(s.waitByPri[pri], w)
			}
		} else if s.seen[msg.UUID] == 2 {
			s.retried++
		}
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
		t.notifyLocked()
		t.mu.Unlock()
		return out, err
	}
}

// DeadLettered records a dead letter for handler.
func (t *Tracker) DeadLettered(handler string) {
	t.mu.Lock()
	t.statsLocked(handler).deadLet++
	t.notifyLocked()
	t.mu.Unlock()
}

// Settled returns how many distinct messages handler has finished (acked or
// dead-lettered) and how many it acked.
func (t *Tracker) Settled(handler string) (settled, acked int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.statsLocked(handler)
	return s.acked + s.deadLet, s.acked
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
	fmt.Fprintf(w, "%-14s %9s %9s %7s %8s %13s %10s %10s\n",
		"handler", "processed", "failed", "retried", "dead", "calls", "wait p50", "wait p99")
	for _, name := range order {
		s := t.statsLocked(name)
		fmt.Fprintf(w, "%-14s %9d %9d %7d %8d %13d %10s %10s\n", name, s.acked, s.nacked, s.retried, s.deadLet,
			s.calls, percentile(s.waits, 0.5).Round(time.Millisecond), percentile(s.waits, 0.99).Round(time.Millisecond))
	}
}

// PrintPriorityWaits writes p50/p99 first-call wait per priority for handler.
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
		fmt.Fprintf(w, "  priority %-3s n=%-5d wait p50 %-8s p99 %s\n", p, len(ws),
			percentile(ws, 0.5).Round(time.Millisecond), percentile(ws, 0.99).Round(time.Millisecond))
	}
}
