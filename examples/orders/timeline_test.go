package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/breaker"
)

// Transitions that happen between two samples (a probe failing within
// milliseconds) are all in the -outage table.
func TestTimelineKeepsEveryTransition(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tl := newTimeline(t0)
	for _, e := range []struct {
		at time.Duration
		to breaker.State
	}{
		{100 * time.Millisecond, breaker.StateOpen},
		{1100 * time.Millisecond, breaker.StateHalfOpen},
		{1101 * time.Millisecond, breaker.StateOpen},
		{2100 * time.Millisecond, breaker.StateHalfOpen},
		{2102 * time.Millisecond, breaker.StateClosed},
	} {
		tl.transition(t0.Add(e.at), e.to)
	}
	var out bytes.Buffer
	tl.print(&out, []int{50, 1, 1, 40})
	got := out.String()
	for _, want := range []string{
		"0s            50  closed -> open",
		"1s             1  open -> half-open -> open",
		"2s             1  open -> half-open -> closed",
		"3s            40  closed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}
