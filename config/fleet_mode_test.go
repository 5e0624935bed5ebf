package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetLimitFollowsHandlerMode: a handler whose ratelimit section
// says `mode: reject` (its messages must not hold the consumer or a
// priority slot while they wait) or sets `max_wait` got a fleet limit
// that waited anyway, unbounded by max_wait: the fleet section built its
// limiter in wait mode without the handler's max_wait. A message the fleet
// cannot admit now is now refused at once in reject mode, and refused
// when its wait would exceed max_wait, as the local limit does.
func TestFleetLimitFollowsHandlerMode(t *testing.T) {
	for _, tc := range []struct{ name, local, fleet string }{
		{"reject", "{rate: 1000/s, burst: 10, mode: reject}", "{rate: 1/s, burst: 1}"},
		{"max_wait", "{rate: 1000/s, burst: 10, max_wait: 100ms}", "{rate: 1/s, burst: 1}"},
		// with local_rate the fleet limit is a limiter of its own
		{"reject, local_rate", "{rate: 1000/s, burst: 10, mode: reject}", "{rate: 1/s, burst: 1, local_rate: 500/s}"},
		{"max_wait, local_rate", "{rate: 1000/s, burst: 10, max_wait: 100ms}", "{rate: 1/s, burst: 1, local_rate: 500/s}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				y := "handlers:\n  h:\n    ratelimit: " + tc.local + "\n    fleet: {ratelimit: " + tc.fleet + "}\n"
				cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				a, err := config.Build(cfg, config.Deps{FleetStore: fleet.NewMemStore()})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
				// In reject mode a replica holds no fleet token until its
				// first lease comes back: warm up until one message passes.
				for i := 0; ; i++ {
					_, err := h(message.NewMessage("1", nil))
					if err == nil {
						break
					}
					if i == 10 {
						t.Fatalf("first message: %v", err)
					}
					testkit.Advance(10 * time.Millisecond)
				}
				start := time.Now()
				_, err = h(message.NewMessage("2", nil))
				if waited := time.Since(start); waited > 100*time.Millisecond {
					t.Errorf("second message waited %v for the fleet's token, want at most max_wait (100ms) or none in reject mode", waited)
				}
				if !errors.Is(err, ratelimit.ErrLimited) || !levee.IsDeferral(err) {
					t.Errorf("second message: %v, want a deferral wrapping ratelimit.ErrLimited", err)
				}
			})
		})
	}
}
