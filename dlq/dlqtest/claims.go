package dlqtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// claimLease is the ClaimLease subtest of Run.
func claimLease(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	mustAdd(t, s, Letter("1", "g", "t", "h", 0), Letter("2", "g", "t", "h", time.Second), Letter("3", "g", "t", "h", 2*time.Second))
	req := dlqops.ClaimRequest{Owner: "A", Now: Base, Lease: time.Minute, Limit: 2}
	got, err := s.Claim(ctx, req)
	if err != nil || !slices.Equal(IDs(got), []string{"1", "2"}) {
		t.Fatalf("A claim: got %v, %v want [1 2]", IDs(got), err)
	}
	req.Owner = "B"
	got, err = s.Claim(ctx, req)
	if err != nil || !slices.Equal(IDs(got), []string{"3"}) {
		t.Fatalf("B claim during A's lease: got %v, %v want [3]", IDs(got), err)
	}
	if err := s.MarkReplayed(ctx, "1", "B", "u", Base); !errors.Is(err, dlqops.ErrClaimLost) {
		t.Errorf("B marks A's letter: got %v want ErrClaimLost", err)
	}
	if err := s.MarkReplayed(ctx, "1", "A", "replay-1", Base); err != nil {
		t.Fatal(err)
	}
	// A crashes holding 2; after the lease C takes it over.
	req.Owner, req.Now = "C", Base.Add(2*time.Minute)
	got, err = s.Claim(ctx, req)
	if err != nil || !slices.Equal(IDs(got), []string{"2", "3"}) {
		t.Fatalf("C claim after leases: got %v, %v want [2 3]", IDs(got), err)
	}
	if err := s.Release(ctx, "2", "A", "late"); !errors.Is(err, dlqops.ErrClaimLost) {
		t.Errorf("A releases after losing the claim: got %v want ErrClaimLost", err)
	}
	if err := s.Release(ctx, "2", "C", "held: reason"); err != nil {
		t.Fatal(err)
	}
	one, _ := s.Get(ctx, "1")
	two, _ := s.Get(ctx, "2")
	if one.Status != dlqops.StatusReplayed || one.ReplayUUID != "replay-1" || !one.ReplayedAt.Equal(Base) {
		t.Errorf("1 after mark: got %+v", one)
	}
	if two.Status != dlqops.StatusNew || two.Reason != "held: reason" {
		t.Errorf("2 after release: got status %s reason %q", two.Status, two.Reason)
	}
	// the cursor skips what the run already walked
	req.Owner, req.Now = "D", Base.Add(time.Hour)
	req.After = &dlqops.Cursor{At: two.FailedAt, ID: two.ID}
	got, err = s.Claim(ctx, req)
	if err != nil || !slices.Equal(IDs(got), []string{"3"}) {
		t.Fatalf("claim after cursor: got %v, %v want [3]", IDs(got), err)
	}
	// force: replayed letters are claimable when asked for
	req.After, req.Owner = nil, "E"
	req.Filter.Statuses = []dlqops.Status{dlqops.StatusReplayed}
	got, err = s.Claim(ctx, req)
	if err != nil || !slices.Equal(IDs(got), []string{"1"}) {
		t.Fatalf("claim replayed: got %v, %v want [1]", IDs(got), err)
	}
	if _, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: "", Now: Base, Lease: time.Minute, Limit: 1}); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("claim without owner: got %v want ErrInvalidQuery", err)
	}
}

// cursorWalksTiesBytewise is the CursorWalksTiesBytewise subtest of Run.
func cursorWalksTiesBytewise(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	// same failure time; "A3" < "a-2" < "a1" < "b" bytewise, not in
	// most natural-language collations
	for _, id := range []string{"a1", "b", "A3", "a-2"} {
		mustAdd(t, s, Letter(id, "g", "t", "h", 0))
	}
	var walked []string
	var after *dlqops.Cursor
	for range 10 {
		got, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: "w", Now: Base, Lease: time.Hour, Limit: 1, After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		walked = append(walked, got[0].ID)
		if err := s.Release(ctx, got[0].ID, "w", "held"); err != nil { // stays new, as a held letter
			t.Fatal(err)
		}
		after = &dlqops.Cursor{At: got[0].FailedAt, ID: got[0].ID}
	}
	if want := []string{"A3", "a-2", "a1", "b"}; !slices.Equal(walked, want) {
		t.Errorf("walked %v want %v", walked, want)
	}
}

// setStatusSkipsClaimed is the SetStatusSkipsClaimed subtest of Run.
func setStatusSkipsClaimed(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	mustAdd(t, s, Letter("1", "g", "t", "h", 0), Letter("2", "g", "t", "h", time.Second))
	if _, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: []string{"1"}}, Owner: "A", Now: Base, Lease: time.Minute, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	n, err := s.SetStatus(ctx, dlqops.Filter{Group: "g"}, dlqops.StatusArchived)
	if err != nil || n != 1 {
		t.Fatalf("archive: got %d, %v want 1", n, err)
	}
	if got, _ := s.Get(ctx, "1"); got.Status != dlqops.StatusNew {
		t.Errorf("claimed letter archived: %s", got.Status)
	}
	if n, err := s.SetStatus(ctx, dlqops.Filter{}, "bogus"); !errors.Is(err, dlqops.ErrInvalidQuery) || n != 0 {
		t.Errorf("bad status: got %d, %v", n, err)
	}
}

// concurrentClaimsAreExclusive is the ConcurrentClaimsAreExclusive subtest of Run.
func concurrentClaimsAreExclusive(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	const total = 300
	var all []dlqops.Record
	for i := range total {
		all = append(all, Letter(fmt.Sprintf("c%03d", i), "g", "t", "h", time.Duration(i)*time.Millisecond))
	}
	mustAdd(t, s, all...)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			owner := fmt.Sprintf("w%d", w)
			for {
				got, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: owner, Now: Base, Lease: time.Hour, Limit: 7})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, dl := range got {
					mu.Lock()
					seen[dl.ID]++
					mu.Unlock()
					if err := s.MarkReplayed(ctx, dl.ID, owner, "r-"+dl.ID, Base); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("claimed %d distinct letters want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
}

// renewLease is the RenewLease subtest of Run: Renew extends the leases
// its owner still holds (also one that ended, while nobody took it over),
// and leaves alone a letter another owner holds, one marked or released,
// and an unknown ID.
func renewLease(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	rn, ok := s.(dlqops.Renewer)
	if !ok {
		t.Skip("the store is not a dlqops.Renewer")
	}
	mustAdd(t, s, Letter("1", "g", "t", "h", 0), Letter("2", "g", "t", "h", time.Second),
		Letter("3", "g", "t", "h", 2*time.Second), Letter("4", "g", "t", "h", 3*time.Second))
	claim := func(owner string, now time.Time, ids ...string) []string {
		t.Helper()
		got, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: ids}, Owner: owner, Now: now, Lease: time.Minute, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return IDs(got)
	}
	if got := claim("A", Base, "1", "2", "3"); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("A claim: got %v want [1 2 3]", got)
	}
	if got := claim("B", Base, "4"); !slices.Equal(got, []string{"4"}) {
		t.Fatalf("B claim: got %v want [4]", got)
	}
	if err := s.MarkReplayed(ctx, "3", "A", "r-3", Base); err != nil {
		t.Fatal(err)
	}
	// two minutes on, A's leases have ended; A renews them until 3m
	n, err := rn.Renew(ctx, "A", Base.Add(3*time.Minute), "1", "2", "3", "4", "missing")
	if err != nil || n != 2 {
		t.Fatalf("renew: got %d, %v want 2 (1 and 2)", n, err)
	}
	if got := claim("C", Base.Add(2*time.Minute), "1", "2", "3", "4"); !slices.Equal(got, []string{"4"}) {
		t.Fatalf("C claim at 2m: got %v want [4] (B's lease ended; 1 and 2 renewed, 3 replayed)", got)
	}
	if err := s.MarkReplayed(ctx, "1", "A", "r-1", Base); err != nil {
		t.Errorf("A marks a renewed letter: %v", err)
	}
	if got := claim("C", Base.Add(3*time.Minute), "2"); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("C claim at 3m: got %v want [2] (the renewed lease ended)", got)
	}
	if n, err := rn.Renew(ctx, "A", Base.Add(time.Hour), "2"); err != nil || n != 0 {
		t.Errorf("A renews a letter C took over: got %d, %v want 0", n, err)
	}
}
