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
// comes back after its RetryAfter and late(i) more, as a transport with
// delayed redelivery brings it back. It returns the rejections and the times
// (since the start) the messages were admitted, sorted. Run it in a
// synctest bubble.
func backlog(t *testing.T, h message.HandlerFunc, n int, key string, late func(i int) time.Duration) (rejected int, admitted []time.Duration) {
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
				time.Sleep(le.RetryAfter() + late(i))
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
// lost (the last admitted at (n-burst)/rate) and none gained. Messages
// that come back late (by up to 40 ms here, under the default catch-up of
// 50 ms, as a broker's redelivery is) take the slot they were told, late,
// without the schedule restarting from then: at burst 1 the backlog
// drained at two thirds of the rate over NATS (22.8 s for 15 s).
func TestRejectModeSpreadsABacklog(t *testing.T) {
	const n, rate = 300, 20.0
	onTime := func(int) time.Duration { return 0 }
	late := func(i int) time.Duration { return time.Duration(i*7%41) * time.Millisecond }
	for _, tc := range []struct {
		name  string
		burst int
		late  func(int) time.Duration
		opts  []ratelimit.Option
	}{
		{"per_key", 5, onTime, []ratelimit.Option{ratelimit.WithPerKey(rate, 5), ratelimit.WithKeyMetadata("tenant")}},
		{"limiter", 5, onTime, []ratelimit.Option{ratelimit.WithRate(rate), ratelimit.WithBurst(5)}},
		{"per_key_late", 1, late, []ratelimit.Option{ratelimit.WithPerKey(rate, 1), ratelimit.WithKeyMetadata("tenant")}},
		{"limiter_late", 1, late, []ratelimit.Option{ratelimit.WithRate(rate)}},
	} {
		burst := tc.burst
		maxLate := tc.late(0)
		for i := range n {
			maxLate = max(maxLate, tc.late(i))
		}
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				l, err := ratelimit.New(append(tc.opts, ratelimit.WithMode(ratelimit.ModeReject))...)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
				rejected, admitted := backlog(t, h, n, "t1", tc.late)
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
				if last, due := admitted[n-1], time.Duration(n-burst)*interval; last > due+maxLate {
					t.Errorf("last admission at %v, want %v (+%v of lateness): the backlog drains at the limit", last, due, maxLate)
				}
			})
		})
	}
}
