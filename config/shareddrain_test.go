package config_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/priority"
)

// TestDrainGoesToTheUrgentFirst: after a recovery the drain's tokens go
// to the most urgent messages, because the ramp waits inside priority
// (docs/PRIORITY.md, "With a rate limit"), for a handler's own breaker and
// for a breaker of the breakers section shared by several handlers alike.
// Four priority-0 messages queue in the drain, then a priority-9 one: it
// goes to the downstream as soon as the slot held by the one waiting for
// the next token is free, before the two other priority-0 ones. A shared breaker's ramp
// waited in the breaker's slot instead, outside priority, first come
// first served: the priority-9 message came last.
func TestDrainGoesToTheUrgentFirst(t *testing.T) {
	const pol = "{consecutive_failures: 1, open_for: 1s, drain: {window: 10s, start: 10%, rate: 10/s}}"
	for _, tc := range []struct{ name, y string }{
		{"own", "schedulers:\n  s: {slots: 1}\nhandlers:\n  h:\n    breaker: " + pol + "\n    priority: {scheduler: s}\n"},
		{"shared", "schedulers:\n  s: {slots: 1}\nbreakers:\n  prov: " + pol + "\n" +
			"handlers:\n  h:\n    breaker: {shared: prov}\n    priority: {scheduler: s}\n  other:\n    breaker: {shared: prov}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				applied := buildFile(t, tc.y)
				br, ok := applied.Breaker("h")
				if !ok {
					t.Fatal("no breaker")
				}
				var down atomic.Bool
				var mu sync.Mutex
				var order []string
				h := applied.Stack("h").Middleware(func(m *message.Message) ([]*message.Message, error) {
					if down.Load() {
						return nil, errors.New("gateway down")
					}
					mu.Lock()
					order = append(order, m.UUID)
					mu.Unlock()
					return nil, nil
				})
				down.Store(true)
				if _, err := h(message.NewMessage("trip", nil)); err == nil {
					t.Fatal("the failing call returned nil")
				}
				down.Store(false)
				time.Sleep(time.Second + time.Millisecond)
				if _, err := h(message.NewMessage("probe", nil)); err != nil {
					t.Fatal(err)
				}
				if p := br.DrainProgress(); p >= 1 {
					t.Fatalf("drain progress %v after the probe, want a drain", p)
				}
				mu.Lock()
				order = order[:0]
				mu.Unlock()
				var wg sync.WaitGroup
				for i, prio := range []int{0, 0, 0, 0, 9} {
					m := message.NewMessage(fmt.Sprintf("p%d-%d", prio, i), nil)
					priority.Set(m, prio)
					wg.Go(func() {
						if _, err := h(m); err != nil {
							t.Errorf("%s: %v", m.UUID, err)
						}
					})
					synctest.Wait()
				}
				wg.Wait()
				if len(order) != 5 {
					t.Fatalf("handled %v, want 5 messages", order)
				}
				// The first message took the slot and its token at once, the
				// second holds the slot for the next token: the priority 9
				// message goes next, before the two still queued.
				if order[2] != "p9-4" {
					t.Errorf("drain order %v, want the priority 9 message third, before the priority 0 ones still waiting", order)
				}
			})
		})
	}
}
