package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetMaxWaitBoundsTheWhole: a message waits for its fleet token
// (its key's, then the fleet's) and then for the local one; max_wait
// bounds those waits together. A message that would wait 1s for its
// fleet key and then 1s for the fleet's or the local token is deferred at max_wait 1.5s,
// never admitted after 2s (before the fix each wait had the whole bound).
func TestFleetMaxWaitBoundsTheWhole(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fleetRate float64 // the fleet's own rate; the local rate is 1/s when it is not
		keyed     bool    // local per-key limits too (the middleware's keyed path)
	}{
		{"fleet key then local", 1e6, true},
		{"fleet key then local, plain path", 1e6, false},
		{"fleet key then the fleet's rate", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				const bound = 1500 * time.Millisecond
				fl := ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "k", Rate: tc.fleetRate,
					PerKeyRate: 1, PerKeyBurst: 1, PerKeyMetadata: "tenant"}
				opts := []ratelimit.Option{ratelimit.WithFleet(fl), ratelimit.WithMaxWait(bound)}
				if tc.fleetRate > 1 {
					opts = append(opts, ratelimit.WithRate(1))
				}
				if tc.keyed {
					opts = append(opts, ratelimit.WithKeyMetadata("tenant"), ratelimit.WithPerKey(1e6, 1))
				}
				l, err := ratelimit.New(opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
				send := func(tenant string) error {
					m := message.NewMessage("u-"+tenant, nil)
					m.Metadata.Set("tenant", tenant)
					m.SetContext(context.Background())
					_, err := h(m)
					return err
				}
				start := time.Now()
				if err := send("a"); err != nil { // a's fleet key's token and the limiting token of t=0
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				wg.Go(func() { _ = send("b") }) // the limiting token of t=1s
				time.Sleep(time.Millisecond)
				err = send("a") // a's fleet key's token of t=1s, the limiting one of t=2s
				took := time.Since(start)
				wg.Wait()
				if err == nil && took > bound {
					t.Fatalf("admitted after %v, want a deferral or admission within %v", took, bound)
				}
				if err != nil && !errors.Is(err, ratelimit.ErrLimited) {
					t.Fatalf("got %v, want ErrLimited", err)
				}
			})
		})
	}
}
