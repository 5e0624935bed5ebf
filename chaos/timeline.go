package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
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
	line := func(e Event) { fmt.Fprintf(w, "  %9s  %s\n", e.At.Round(time.Millisecond), e.What) }
	for i := 0; i < len(events); {
		j := i
		for j < len(events) && strings.HasPrefix(events[j].What, "breaker ") {
			j++
		}
		if j-i < 2*timelineKeep+timelineFoldMin {
			end := max(j, i+1)
			for ; i < end; i++ {
				line(events[i])
			}
			continue
		}
		// A long run of breaker transitions (a breaker cycling between
		// open and half-open while only failing messages are left): the
		// first and last few, and how many between.
		for _, e := range events[i : i+timelineKeep] {
			line(e)
		}
		fmt.Fprintf(w, "  %9s  ... %d breaker state changes ...\n", "", j-i-2*timelineKeep)
		for _, e := range events[j-timelineKeep : j] {
			line(e)
		}
		i = j
	}
}

// printTimeline shows the first and last timelineKeep transitions of a run
// of breaker transitions that would hide at least timelineFoldMin.
const (
	timelineKeep    = 6
	timelineFoldMin = 10
)
