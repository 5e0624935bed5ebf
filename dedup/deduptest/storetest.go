package deduptest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/levee-dev/levee/dedup"
)

// Lease and Window are the durations the suite uses; a store must keep
// them to about Slack.
const (
	Lease  = 300 * time.Millisecond
	Window = 600 * time.Millisecond
	Slack  = 150 * time.Millisecond
)

// Run runs the conformance suite against the store returned by newStore.
// Each subtest uses keys of its own with prefix, so a shared server is
// fine; prefix must be fresh per run.
func Run(t *testing.T, prefix string, newStore func(t *testing.T) dedup.Store) {
	for _, tc := range append(claimScenarios(), timeScenarios()...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t), fmt.Sprintf("%s-%s", prefix, tc.name))
		})
	}
}

type scenario struct {
	name string
	fn   func(t *testing.T, s dedup.Store, key string)
}

// claimScenarios: claims, done marks and releases.
func claimScenarios() []scenario {
	ctx := context.Background()
	return []scenario{
		{"claim then busy", func(t *testing.T, s dedup.Store, key string) {
			want(t, claim(t, s, key, 1), dedup.StatusClaimed, false)
			c := claim(t, s, key, 2)
			want(t, c, dedup.StatusBusy, false)
			if c.Remaining <= 0 || c.Remaining > Lease {
				t.Errorf("busy remaining: got %v, want in (0, %v]", c.Remaining, Lease)
			}
		}},
		{"done then duplicate", func(t *testing.T, s dedup.Store, key string) {
			claim(t, s, key, 1)
			must(t, s.Done(ctx, key, 1, Window))
			want(t, claim(t, s, key, 2), dedup.StatusDone, false)
			must(t, s.Release(ctx, key, 1)) // a release after done changes nothing
			want(t, claim(t, s, key, 3), dedup.StatusDone, false)
		}},
		{"release lets a retry claim", func(t *testing.T, s dedup.Store, key string) {
			claim(t, s, key, 1)
			must(t, s.Release(ctx, key, 1))
			want(t, claim(t, s, key, 2), dedup.StatusClaimed, false)
		}},
		{"release with another token does nothing", func(t *testing.T, s dedup.Store, key string) {
			claim(t, s, key, 1)
			must(t, s.Release(ctx, key, 99))
			want(t, claim(t, s, key, 2), dedup.StatusBusy, false)
		}},
		{"is done", func(t *testing.T, s dedup.Store, key string) {
			dc, ok := s.(dedup.DoneChecker)
			if !ok {
				t.Skip("the store is no DoneChecker")
			}
			isDone := func(want bool) {
				t.Helper()
				if got, err := dc.IsDone(ctx, key); err != nil || got != want {
					t.Errorf("IsDone: got %v, %v; want %v", got, err, want)
				}
			}
			isDone(false)
			claim(t, s, key, 1)
			isDone(false)
			must(t, s.Done(ctx, key, 1, Window))
			isDone(true)
			want(t, claim(t, s, key, 2), dedup.StatusDone, false) // IsDone claimed nothing
		}},
		{"keys are independent", func(t *testing.T, s dedup.Store, key string) {
			claim(t, s, key+"-a", 1)
			must(t, s.Done(ctx, key+"-a", 1, Window))
			want(t, claim(t, s, key+"-b", 1), dedup.StatusClaimed, false)
		}},
	}
}

// timeScenarios: leases and windows that end, and concurrent claims.
func timeScenarios() []scenario {
	ctx := context.Background()
	return []scenario{
		{"expired lease is taken over", func(t *testing.T, s dedup.Store, key string) {
			claim(t, s, key, 1)
			time.Sleep(Lease + Slack)
			want(t, claim(t, s, key, 2), dedup.StatusClaimed, true)
			must(t, s.Release(ctx, key, 1)) // the old holder's late release
			want(t, claim(t, s, key, 3), dedup.StatusBusy, false)
		}},
		{"a claim long past its lease is still taken over", func(t *testing.T, s dedup.Store, key string) {
			// A holder that outlived its lease by more than one more
			// lease (a hung handler, a crash): the claim that runs beside
			// it, or after it, is still counted as a takeover.
			claim(t, s, key, 1)
			time.Sleep(3*Lease + Slack)
			want(t, claim(t, s, key, 2), dedup.StatusClaimed, true)
		}},
		{"done mark expires after the window", func(t *testing.T, s dedup.Store, key string) {
			must(t, s.Done(ctx, key, 1, Window)) // without a claim: still recorded
			want(t, claim(t, s, key, 2), dedup.StatusDone, false)
			time.Sleep(Window + Slack)
			want(t, claim(t, s, key, 3), dedup.StatusClaimed, false)
		}},
		{"late done after a takeover still marks", func(t *testing.T, s dedup.Store, key string) {
			claim(t, s, key, 1)
			time.Sleep(Lease + Slack)
			claim(t, s, key, 2)
			must(t, s.Done(ctx, key, 1, Window))
			want(t, claim(t, s, key, 3), dedup.StatusDone, false)
		}},
		{"one claim among concurrent ones", func(t *testing.T, s dedup.Store, key string) {
			const n = 16
			var wg sync.WaitGroup
			got := make([]dedup.Status, n)
			for i := range n {
				wg.Go(func() {
					c, err := s.Claim(ctx, key, uint64(i+1), time.Minute)
					if err != nil {
						t.Error(err)
					}
					got[i] = c.Status
				})
			}
			wg.Wait()
			claimed := 0
			for _, st := range got {
				if st == dedup.StatusClaimed {
					claimed++
				}
			}
			if claimed != 1 {
				t.Errorf("concurrent claims: got %d claimed, want 1 (%v)", claimed, got)
			}
		}},
	}
}

func claim(t *testing.T, s dedup.Store, key string, token uint64) dedup.Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), key, token, Lease)
	if err != nil {
		t.Fatalf("claim %q: %v", key, err)
	}
	return c
}

func want(t *testing.T, c dedup.Claim, st dedup.Status, tookOver bool) {
	t.Helper()
	if c.Status != st || c.TookOver != tookOver {
		t.Errorf("claim: got %v took over %v, want %v took over %v", c.Status, c.TookOver, st, tookOver)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
