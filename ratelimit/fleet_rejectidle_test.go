package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetRejectModeAfterIdle: a fleet limit in reject mode idles for a
// second (its replica gives its tokens back, as docs/FLEET.md says), then
// gets 1,000 messages/s, far under the fleet's 1e6/s. A refused message
// only poked the lease loop, which still saw the replica idle (nothing
// spent, nobody waiting) and fetched nothing: every message was refused
// for good (2,000 of 2,000 over 2 s). A refusal now asks for a lease as a
// waiter does.
func TestFleetRejectModeAfterIdle(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "k", Rate: 1e6}),
			ratelimit.WithMode(ratelimit.ModeReject))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		send := func() error {
			m := message.NewMessage("u", nil)
			m.SetContext(context.Background())
			_, err := h(m)
			return err
		}
		_ = send() // the first lease (refused until it arrives, as documented)
		time.Sleep(time.Second)
		var refused [2]int
		for i := range 2000 {
			if send() != nil {
				refused[i/1000]++
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("refused: %d in the first second, %d in the second", refused[0], refused[1])
		if refused[0] > 500 || refused[1] > 0 {
			t.Errorf("refused %d of 1000 messages in the first second after the idle period and %d in the second, want at most 500 (the lease grows with the demand) and none",
				refused[0], refused[1])
		}
	})
}
