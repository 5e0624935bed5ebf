package chaos

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Event is one line of a run's timeline.
type Event struct {
	At   time.Duration // since the run's start
	What string
}

// timeline collects events; safe for concurrent use.
type timeline struct {
	start  time.Time
	mu     sync.Mutex
	events []Event // guarded by mu
}

func (t *timeline) add(format string, args ...any) {
	e := Event{At: time.Since(t.start), What: fmt.Sprintf(format, args...)}
	t.mu.Lock()
	t.events = append(t.events, e)
	t.mu.Unlock()
}

func (t *timeline) list() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]Event(nil), t.events...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// printTimeline writes events, one per line.
func printTimeline(w io.Writer, events []Event) {
	for _, e := range events {
		fmt.Fprintf(w, "  %9s  %s\n", e.At.Round(time.Millisecond), e.What)
	}
}
