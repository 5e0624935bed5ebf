package chaos

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A long run of breaker transitions is printed as its first and last few
// lines and a count; other events and short runs are printed whole.
func TestPrintTimelineFoldsLongBreakerRuns(t *testing.T) {
	events := []Event{{At: time.Second, What: "outage begins for 2s"}}
	for i := range 30 {
		events = append(events, Event{At: time.Second + time.Duration(i)*time.Millisecond, What: fmt.Sprintf("breaker chaos: transition %d", i)})
	}
	events = append(events, Event{At: 3 * time.Second, What: "outage ends"},
		Event{At: 4 * time.Second, What: "breaker chaos: open -> half-open"},
		Event{At: 4 * time.Second, What: "breaker chaos: half-open -> closed"})
	var b bytes.Buffer
	printTimeline(&b, events)
	out := b.String()
	for _, want := range []string{"outage begins for 2s", "transition 0\n", "transition 5\n", "... 18 breaker state changes ...",
		"transition 24\n", "transition 29\n", "outage ends", "open -> half-open", "half-open -> closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{"transition 6\n", "transition 23\n"} {
		if strings.Contains(out, gone) {
			t.Errorf("timeline prints %q, folded away:\n%s", gone, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 1+6+1+6+3 {
		t.Errorf("%d lines, want 17:\n%s", n, out)
	}
	// A run that would hide fewer than timelineFoldMin is printed whole.
	b.Reset()
	printTimeline(&b, events[:1+2*timelineKeep+timelineFoldMin-1])
	if out := b.String(); strings.Contains(out, "...") || strings.Count(out, "\n") != 1+2*timelineKeep+timelineFoldMin-1 {
		t.Errorf("a short run was folded:\n%s", out)
	}
}
