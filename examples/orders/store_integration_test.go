//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// With -store redis the dead letters go to a Redis store: the report's
// groups come from it, -replay-fixed claims and replays from it, and the
// letters stay there for `levee dlq` after the run.
func TestRunWithRedisStore(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisURL())
	o := testOptions()
	o.store, o.storePrefix = "redis", brokertest.Name("levee_orders_test")
	o.malformed, o.badPhones, o.big, o.replayFixed = 3, 2, 3, true
	ctx := context.Background()
	s, err := redisstore.Open(ctx, brokertest.RedisURL(), redisstore.WithPrefix(o.storePrefix))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer s.Prune(ctx, dlqops.Retention{MaxAge: time.Nanosecond}, time.Now().Add(time.Hour))

	var out bytes.Buffer
	if err := run(ctx, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, want := range []string{"dlqops.Monitor -> redis store", "exceeds the gateway limit", "validation payments",
		"3 replayed at 50/s", "payments processed 3 of them", "new 0   replayed 3"} {
		if !strings.Contains(report, want) {
			t.Fatalf("report lacks %q:\n%s", want, report)
		}
	}
	groups, err := s.Groups(ctx, dlqops.GroupQuery{})
	if err != nil {
		t.Fatal(err)
	}
	total, replayed := 0, 0
	for _, g := range groups {
		total += g.Count
		replayed += g.Replayed
	}
	// 3 malformed orders, 2 bad phones, 3 over the limit
	if total != 8 || replayed != 3 {
		t.Errorf("store holds %d letters, %d replayed; want 8 and 3: %+v", total, replayed, groups)
	}
}
