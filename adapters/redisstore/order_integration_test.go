//go:build integration

package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestGroupOrderSetsAreRebuilt: letters written by a version that kept no
// order sets (simulated by deleting them), or a group such a version
// added during a rolling upgrade, are paged in the right order: Groups
// rebuilds the sets from the counters when their size differs from the
// key set's.
func TestGroupOrderSetsAreRebuilt(t *testing.T) {
	ctx := context.Background()
	p := newPrefix(t)
	s := openStore(t, p)
	var letters []dlqops.Record
	for i := range 6 {
		for j := range i + 1 { // g5 has the most letters, and the newest
			letters = append(letters, dlqtest.Letter(fmt.Sprintf("l-%d-%d", i, j), fmt.Sprintf("g%d", i), "orders", "ship",
				time.Duration(i*10+j)*time.Second))
		}
	}
	if _, err := s.Add(ctx, letters...); err != nil {
		t.Fatal(err)
	}
	k := p + ":dlq:"
	c := s.Client()
	page := func(when string, want []string) {
		t.Helper()
		for _, o := range []dlqops.GroupOrder{dlqops.GroupsByCount, dlqops.GroupsByNewest} {
			gs, err := s.Groups(ctx, dlqops.GroupQuery{Order: o, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range gs {
				got = append(got, g.Key)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, %s: got %v want %v", when, o, got, want)
			}
		}
	}
	// an older version's data: no order sets at all
	if err := c.Del(ctx, k+"o:c:f", k+"o:l:f").Err(); err != nil {
		t.Fatal(err)
	}
	page("without order sets", []string{"g5", "g4", "g3"})
	// a group an older version added: in the key set and counters only
	if err := c.ZRem(ctx, k+"o:c:f", "g5").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZRem(ctx, k+"o:l:f", "g5").Err(); err != nil {
		t.Fatal(err)
	}
	page("with a group missing from them", []string{"g5", "g4", "g3"})
	if n, err := c.ZCard(ctx, k+"o:c:f").Result(); err != nil || n != 6 {
		t.Errorf("rebuilt order set has %d keys, %v want 6", n, err)
	}
}
