package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/levee-dev/levee/breaker"
)

// timeline samples the payments breaker every 100 ms and keeps, per
// second, the states seen and the drain progress at the end of the second.
type timeline struct {
	mu     sync.Mutex // guards rows
	rows   []second
	done   chan struct{}
	cancel context.CancelFunc
}

type second struct {
	states []breaker.State
	drain  float64
}

func sampleBreaker(ctx context.Context, b *breaker.Breaker, start time.Time) *timeline {
	ctx, cancel := context.WithCancel(ctx)
	t := &timeline{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				sec := int(now.Sub(start) / time.Second)
				st, dp := b.State(), b.DrainProgress()
				t.mu.Lock()
				for len(t.rows) <= sec {
					t.rows = append(t.rows, second{})
				}
				r := &t.rows[sec]
				if len(r.states) == 0 || r.states[len(r.states)-1] != st {
					r.states = append(r.states, st)
				}
				r.drain = dp
				t.mu.Unlock()
			}
		}
	}()
	return t
}

// print writes one line per second: gateway calls, breaker states, drain.
func (t *timeline) print(w io.Writer, calls []int) {
	if t != nil {
		t.cancel()
		<-t.done
	}
	fmt.Fprintf(w, "  %4s %13s  %-28s %s\n", "t", "gateway calls", "breaker", "drain")
	n := len(calls)
	if t != nil && len(t.rows) > n {
		n = len(t.rows)
	}
	for i := 0; i < n; i++ {
		c := 0
		if i < len(calls) {
			c = calls[i]
		}
		states, drain := "-", ""
		if t != nil && i < len(t.rows) {
			states = ""
			for j, s := range t.rows[i].states {
				if j > 0 {
					states += " -> "
				}
				states += s.String()
			}
			if t.rows[i].drain < 1 {
				drain = fmt.Sprintf("%3.0f%%", t.rows[i].drain*100)
			}
		}
		fmt.Fprintf(w, "  %3ds %13d  %-28s %s\n", i, c, states, drain)
	}
}
