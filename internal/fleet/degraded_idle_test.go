package fleet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestPoolRecoversWhileIdle: a Pool whose store failed while it still
// held enough tokens for its demand, and that then idles (its handler gets
// no message), asks the store again once per period and ends its outage
// when the store answers. It made no store call while it held them, so it
// stayed degraded (levee.fleet.degraded 1, LeveeFleetStoreDown firing)
// until a message ran its tokens low: for as long as a quiet handler got
// none, after the store came back (seen in
// TestTelemetryOfAServiceUnderStoreOutages, adapters/service).
func TestPoolRecoversWhileIdle(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		every time.Duration // one message per
	}{{400, 10 * time.Millisecond}, {400, 5 * time.Millisecond}, {100, 100 * time.Millisecond}} {
		t.Run(fmt.Sprintf("%v/s, a message every %v", c.rate, c.every), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				s := fleet.NewMemStore()
				p := newPool(t, s, "a", c.rate, fleet.Local)
				defer p.Close()
				take := func() {
					if !p.Take(context.Background(), 0, true).OK() {
						t.Fatal("not admitted")
					}
					time.Sleep(c.every)
				}
				for range 200 {
					take()
				}
				s.SetErr(errDown)
				for !p.Degraded() {
					take()
				}
				held := p.Held()
				s.SetErr(nil)
				testkit.Advance(time.Second) // no message
				if p.Degraded() {
					t.Errorf("degraded 1 s after the store came back, idle (held %d tokens when it failed, %d now)", held, p.Held())
				}
			})
		})
	}
}
