package kafka

import (
	"testing"
	"time"
)

// TestLimitCacheAsksOncePerTTL: the topic's max.message.bytes is asked
// once per topic and limitTTL (each question opens a cluster admin); an
// unanswered question is asked again next time.
func TestLimitCacheAsksOncePerTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	asked := map[string]int{}
	answers := map[string]int64{"orders.dlq": 4096, "down": 0}
	c := newLimitCache(func(topic string) int64 { asked[topic]++; return answers[topic] }, func() time.Time { return now })

	for range 3 {
		if got := c.get("orders.dlq"); got != 4096 {
			t.Fatalf("limit: got %d, want 4096", got)
		}
	}
	if asked["orders.dlq"] != 1 {
		t.Fatalf("asked %d times within the TTL, want 1", asked["orders.dlq"])
	}
	now = now.Add(limitTTL)
	answers["orders.dlq"] = 8192
	if got := c.get("orders.dlq"); got != 8192 || asked["orders.dlq"] != 2 {
		t.Fatalf("after the TTL: got %d after %d questions, want 8192 after 2", got, asked["orders.dlq"])
	}
	for range 2 {
		if got := c.get("down"); got != 0 {
			t.Fatalf("unanswered: got %d, want 0", got)
		}
	}
	if asked["down"] != 2 {
		t.Fatalf("an unanswered question was remembered: asked %d times, want 2", asked["down"])
	}
}
