package ratelimit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// backlog sends n messages of key at once to h; each rejected message
// comes back exactly after its RetryAfter, as a transport with delayed
// redelivery brings it back. It returns the rejections and the times
// (since the start) the messages were admitted, sorted. Run it in a
// synctest bubble.
func backlog(t *testing.T, h message.HandlerFunc, n int, key string) (rejected int, admitted []time.Duration) {
	t.Helper()
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for {
				m := message.NewMessage("u"+string(rune('a'+i%26)), nil)
				m.Metadata.Set("tenant", key)
				m.SetContext(context.Background())
				_, err := h(m)
				var le *ratelimit.LimitedError
				if err == nil {
					mu.Lock()
					admitted = append(admitted, time.Since(start))
					mu.Unlock()
					return
				}
				if !errors.As(err, &le) {
					t.Errorf("message %d: %v, want a *LimitedError", i, err)
					return
				}
				mu.Lock()
				rejected++
				mu.Unlock()
				time.Sleep(le.RetryAfter())
			}
		})
	}
	wg.Wait()
	slices.Sort(admitted)
	return rejected, admitted
}

// TestRejectModeSpreadsABacklog: in reject mode every message rejected
// for a bucket was told the same RetryAfter (the bucket's next free
// slot), so a backlog of 300 came back all together and all but one were
// rejected again: 44,850 rejections for 300 messages at 20/s, as the
// audit measured over NATS (43,679 for 370). Rejections are now spread
// over the slots to come, so each message is rejected about once, and
// the backlog still drains at the limit: every message admitted, no slot
// lost (the last admitted at (n-burst)/rate) and none gained.
func TestRejectModeSpreadsABacklog(t *testing.T) {
	const n, rate, burst = 300, 20.0, 5
	for _, tc := range []struct {
		name string
		opts []ratelimit.Option
	}{
		{"per_key", []ratelimit.Option{ratelimit.WithPerKey(rate, burst), ratelimit.WithKeyMetadata("tenant")}},
		{"limiter", []ratelimit.Option{ratelimit.WithRate(rate), ratelimit.WithBurst(burst)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				l, err := ratelimit.New(append(tc.opts, ratelimit.WithMode(ratelimit.ModeReject))...)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
				rejected, admitted := backlog(t, h, n, "t1")
				t.Logf("%d rejections for %d messages; last admitted at %v", rejected, n, admitted[len(admitted)-1])
				if len(admitted) != n {
					t.Fatalf("admitted %d of %d messages", len(admitted), n)
				}
				if rejected > 2*n {
					t.Errorf("%d rejections for a backlog of %d, want at most %d (each about once)", rejected, n, 2*n)
				}
				interval := time.Duration(float64(time.Second) / rate)
				// the k-th admission (from 0) is due at (k-burst+1)*interval:
				// none earlier (no slot gained), the last no later (none lost)
				for k, at := range admitted {
					if due := time.Duration(k-burst+1) * interval; at < due {
						t.Fatalf("admission %d at %v, before its slot %v: over the limit", k, at, due)
					}
				}
				if last, due := admitted[n-1], time.Duration(n-burst)*interval; last > due {
					t.Errorf("last admission at %v, want %v (the backlog drains at the limit)", last, due)
				}
			})
		})
	}
}
