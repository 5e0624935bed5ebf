package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/levee-dev/levee/breaker"
)

// timeline keeps, per second of the run, the payments breaker's states in
// the order they happened and the drain progress at the end of the
// second. States come from the breaker's state-change hook
// (config.Deps.OnBreakerStateChange), so a transition between two samples
// is never missed; a sampler every 100 ms records the drain progress.
type timeline struct {
	start time.Time

	mu   sync.Mutex // guards rows and last
	rows []second
	last breaker.State

	done   chan struct{}
	cancel context.CancelFunc
}

type second struct {
	states []breaker.State
	drain  float64
	seen   bool // drain was sampled in this second
}

func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, last: breaker.StateClosed}
}

// row returns the row of the second at now, adding rows up to it; each
// new row starts with the state the breaker is in. Call with mu held.
func (t *timeline) row(now time.Time) *second {
	sec := max(0, int(now.Sub(t.start)/time.Second))
	for len(t.rows) <= sec {
		t.rows = append(t.rows, second{states: []breaker.State{t.last}, drain: 1})
	}
	return &t.rows[sec]
}

// transition records a state change at now.
func (t *timeline) transition(now time.Time, to breaker.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.row(now)
	if r.states[len(r.states)-1] != to {
		r.states = append(r.states, to)
	}
	t.last = to
}

// sample records the breaker's drain progress every 100 ms until ctx
// ends or print is called.
func (t *timeline) sample(ctx context.Context, b *breaker.Breaker) {
	ctx, cancel := context.WithCancel(ctx)
	t.done, t.cancel = make(chan struct{}), cancel
	go func() {
		defer close(t.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				dp := b.DrainProgress()
				t.mu.Lock()
				r := t.row(now)
				r.drain, r.seen = dp, true
				t.mu.Unlock()
			}
		}
	}()
}

// print writes one line per second: gateway calls, breaker states, drain.
func (t *timeline) print(w io.Writer, calls []int) {
	if t != nil && t.cancel != nil {
		t.cancel()
		<-t.done
	}
	fmt.Fprintf(w, "  %4s %13s  %-28s %s\n", "t", "gateway calls", "breaker", "drain")
	n := len(calls)
	if t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		n = max(n, len(t.rows))
	}
	for i := 0; i < n; i++ {
		c := 0
		if i < len(calls) {
			c = calls[i]
		}
		states, drain := "-", ""
		if t != nil && i >= len(t.rows) {
			states = t.last.String() // no change since the last row
		}
		if t != nil && i < len(t.rows) {
			states = ""
			for j, s := range t.rows[i].states {
				if j > 0 {
					states += " -> "
				}
				states += s.String()
			}
			if r := t.rows[i]; r.seen && r.drain < 1 {
				drain = fmt.Sprintf("%3.0f%%", r.drain*100)
			}
		}
		fmt.Fprintf(w, "  %3ds %13d  %-28s %s\n", i, c, states, drain)
	}
}
