//go:build integration

package redisstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestPagePartialWalk: a search matching few letters of a large index
// returns partial pages within the walk budget, and following Next finds
// every match once, newest first; ties on the failure time (one
// microsecond) are walked by ID across the budget's edge.
func TestPagePartialWalk(t *testing.T) {
	ctx := context.Background()
	prefix := brokertest.Name("levee_test")
	s, err := Open(ctx, brokertest.RedisURL(), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer func() {
		keys, _ := s.client.Keys(ctx, prefix+":*").Result()
		if len(keys) > 0 {
			_ = s.client.Unlink(ctx, keys...).Err()
		}
	}()
	s.pageBudget = 7
	var letters []dlqops.Record
	for i := range 40 {
		dl := dlqtest.Letter(fmt.Sprintf("l-%02d", i), "g", "orders", "h", time.Duration(i/4)*time.Second) // four a microsecond
		if i%9 == 0 {
			dl.Error = "Needle in " + dl.ID
		}
		letters = append(letters, dl)
	}
	if _, err := s.Add(ctx, letters...); err != nil {
		t.Fatal(err)
	}
	q := dlqops.PageQuery{Text: "NEEDLE", Filter: dlqops.Filter{Limit: 2}}
	var got []string
	partial := 0
	for range 100 {
		p, err := s.Page(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, dlqtest.IDs(p.Letters)...)
		if p.Partial {
			partial++
		}
		if p.Next == nil {
			break
		}
		q.Before = p.Next
	}
	if want := []string{"l-36", "l-27", "l-18", "l-09", "l-00"}; !slices.Equal(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	if partial == 0 {
		t.Error("no partial page with a budget of 7 entries")
	}
	// and without a text filter, pages of 3 walk all 40 in order
	all := dlqops.PageQuery{Filter: dlqops.Filter{Limit: 3}}
	var ids []string
	for range 100 {
		p, err := s.Page(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, dlqtest.IDs(p.Letters)...)
		if p.Next == nil {
			break
		}
		all.Before = p.Next
	}
	want := dlqtest.IDs(letters)
	slices.Reverse(want)
	if !slices.Equal(ids, want) {
		t.Errorf("walk of all: got %v", ids)
	}
}
