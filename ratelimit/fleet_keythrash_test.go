package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetRejectModeKeyChurn: a per-key fleet limit in reject mode, and
// one tenant more than max_keys sending round robin, each well under its
// rate. Every message's key was dropped for the others since its last
// message, so it started a new Pool that held no lease yet, and reject
// mode refused it: 0 of 550 admitted, and the redelivery found its key
// dropped again. docs/FLEET.md says the first message of a key the
// replica has not seen waits one round trip; now it does in reject mode
// too, and every message is admitted.
func TestFleetRejectModeKeyChurn(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "k", Rate: 1e6,
			PerKeyRate: 100, PerKeyBurst: 10, PerKeyMetadata: "tenant", MaxKeys: 10}), ratelimit.WithMode(ratelimit.ModeReject))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		send := func(tenant string) error {
			m := message.NewMessage("u", nil)
			m.Metadata.Set("tenant", tenant)
			m.SetContext(context.Background())
			_, err := h(m)
			return err
		}
		refused := 0
		var last error
		round := func(count bool) {
			for k := range 11 { // 11 tenants, max_keys 10: each one's key was dropped since its last message
				if err := send(fmt.Sprint("t", k)); err != nil && count {
					refused, last = refused+1, err
				}
				time.Sleep(time.Millisecond) // each tenant at 91/s, under its 100/s
			}
		}
		// A second of the same traffic first: the fleet-wide pool (rate
		// 1e6) sizes its leases from the replica's demand, and while that
		// demand ramps up from nothing a lease can run dry before the next
		// one arrives, which refuses a message in reject mode (about one
		// in 550 under -race). That is the whole limit's lease ramp, not
		// the per-key first lease this test is about.
		for range 91 {
			round(false)
		}
		for range 50 {
			round(true)
		}
		if refused > 0 {
			t.Errorf("%d of 550 messages refused (last: %v), want none: every tenant is under its rate", refused, last)
		}
	})
}
