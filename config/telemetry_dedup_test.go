package config_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// TestDedupDeferralsInDLQCounters: a duplicate that arrives while the
// first delivery of its identity runs (10 s) is deferred by the dedup slot
// (inside the dlq) with RetryAfter = busy_retry (250 ms by default, less
// than the claim's remaining lease). The dlq waits each refusal in process
// while it ends within its 2 s max hold: refusals at 0, 0.25 … 2 s, eight
// waited and the ninth Nacked as deferred. levee.dedup.claims.waited
// counts all nine (each refusal), levee.dlq.deferrals and
// levee.handler.messages{outcome="deferred"} the one Nacked delivery, as
// docs/TELEMETRY.md says; none is an attempt. A later duplicate of the
// done identity is acked without running (levee.dedup.duplicates).
func TestDedupDeferralsInDLQCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		y := "handlers:\n  h:\n    metrics: true\n    dlq: {topic: d, max_hold: 2s}\n    dedup: {key: {metadata: id}, lease: 1m}\n"
		a, reader := buildMetered(t, y)
		calls := 0
		h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) {
			calls++
			time.Sleep(10 * time.Second)
			return nil, nil
		})
		deliver := func(uuid string) error {
			m := message.NewMessage(uuid, nil)
			m.Metadata.Set("id", "order-1")
			_, err := h(m)
			return err
		}
		var wg sync.WaitGroup
		var firstErr error
		wg.Go(func() { firstErr = deliver("a") })
		synctest.Wait()
		if err := deliver("b"); !levee.IsDeferral(err) {
			t.Fatalf("the duplicate in progress: got %v, want a deferral", err)
		}
		wg.Wait()
		if firstErr != nil {
			t.Fatal(firstErr)
		}
		if err := deliver("c"); err != nil {
			t.Fatalf("the duplicate of a done identity: %v, want acked", err)
		}
		if calls != 1 {
			t.Fatalf("%d handler calls, want 1", calls)
		}
		got, _ := points(t, reader, "outcome")
		for k, w := range map[string]int64{
			"levee.dedup.claims.waited":       9,
			"levee.dlq.deferrals":             1,
			"levee.handler.messages deferred": 1,
			"levee.handler.messages acked":    2,
			"levee.dedup.duplicates":          1,
			"levee.dlq.retries":               0,
			"levee.dlq.retries_deferred":      0,
		} {
			if got[k] != w {
				t.Errorf("%s: got %d, want %d", k, got[k], w)
			}
		}
	})
}
