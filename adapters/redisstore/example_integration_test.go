//go:build integration

package redisstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// A store on the loopback Redis: record three dead letters (one twice, as
// a redelivery would), group them, and claim the new ones for a replay.
func ExampleOpen() {
	ctx := context.Background()
	prefix := fmt.Sprintf("levee_example_%d", time.Now().UnixNano())
	s, err := redisstore.Open(ctx, redisURL(), redisstore.WithPrefix(prefix))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	defer s.Prune(ctx, dlqops.Retention{MaxAge: time.Nanosecond}, time.Now()) // delete the example's letters

	a := dlqtest.Letter("order-1", "3f1c0d2a9b8e7f60", "orders", "payments", 0)
	b := dlqtest.Letter("order-2", "3f1c0d2a9b8e7f60", "orders", "payments", time.Minute)
	c := dlqtest.Letter("sms-7", "aa00bb11cc22dd33", "sms.send", "sms", 2*time.Minute)
	n, _ := s.Add(ctx, a, b, c, a)
	fmt.Println("added", n)

	groups, _ := s.Groups(ctx, dlqops.GroupQuery{})
	for _, g := range groups {
		fmt.Println(g.Key, g.Count, g.Topics, g.Handlers)
	}

	claimed, _ := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{Group: "3f1c0d2a9b8e7f60"},
		Owner: "replayer-1", Now: time.Now(), Lease: time.Minute, Limit: 10})
	for _, dl := range claimed {
		fmt.Println("claimed", dl.ID, dl.FailedAt.Format(time.TimeOnly))
	}
	// Output:
	// added 3
	// 3f1c0d2a9b8e7f60 2 [orders] [payments]
	// aa00bb11cc22dd33 1 [sms.send] [sms]
	// claimed order-1 12:00:00
	// claimed order-2 12:01:00
}
