package breaker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestFleetBreakerIdleReplicaDoesNotHoldTheProbe: a replica with no
// message waiting (a consumer with no partition, an idle one) does not
// take the probe lease of a half-open fleet, so the message waiting on
// another replica probes at its next report. Before, the first replica to
// report after open_for took the lease: an idle one whose reports came
// first held it for probe_ttl, then took it again at its expiry, and the
// fleet stayed half-open for good (30s here, with open_for 1s).
func TestFleetBreakerIdleReplicaDoesNotHoldTheProbe(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		mk := func(member string) *breaker.FleetBreaker {
			b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Member: member, MinRequests: 10,
				Window: time.Second, OpenFor: 1050 * time.Millisecond, DrainWindow: time.Second, DrainRate: 100})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		busy := mk("busy")
		defer busy.Close()
		time.Sleep(100 * time.Millisecond) // the idle replica reports 100ms after the busy one
		idle := mk("idle")
		defer idle.Close()
		h := busy.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errDownstream })
		for i := range 10 {
			_, _ = h(message.NewMessage(fmt.Sprint(i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery)
		if st := busy.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s, want open", st)
		}
		opened := time.Now()
		ok := busy.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		done := make(chan time.Duration, 1)
		go func() {
			_, _ = ok(message.NewMessage("probe", nil))
			done <- time.Since(opened)
		}()
		select {
		case d := <-done:
			if want := 1050*time.Millisecond + 2*breaker.DefaultFleetReportEvery; d > want {
				t.Errorf("the waiting message ran %v after the trip, want within open_for + 2 report periods (%v)", d, want)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the waiting message did not run in 30s; idle %s, busy %s", idle.State(), busy.State())
		}
	})
}
