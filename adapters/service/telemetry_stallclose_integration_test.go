//go:build integration

package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/brokertest"
)

// TestTelemetryOfAServiceClosedWhileItsStoresStall closes a service of
// toYAML while its dedup store and its fleet store stall and messages are
// in flight (waiting on a store call, a rate-limit token or a priority
// slot), over every durable transport: the metrics count each delivery in
// the outcome the router saw, nothing is counted as a failure, and every
// gauge is back to 0 after Close (levee.fleet.degraded included: a limit
// closed while degraded leaves it).
func TestTelemetryOfAServiceClosedWhileItsStoresStall(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	onEachTransport(t, 2, tsRun)
}

func tsRun(t *testing.T, transport string, settled func(t *testing.T)) {
	e := toStart(t, transport, settled)
	pub := func(from, n int) {
		for i := from; i < from+n; i++ {
			m := message.NewMessage(watermill.NewUUID(), []byte("ok"))
			m.Metadata.Set("kind", "ok")
			m.Metadata.Set("order_id", fmt.Sprintf("o%d", i))
			if err := e.svc.Transport.Publisher.Publish(e.topic, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub(0, 10)
	svcWait(t, "the first 10 handled", func() bool { return e.res.get(func(r *toResults) int { return len(r.effects) }) == 10 })
	// Messages keep coming until each store's outage is counted: the
	// fleet limit calls its store only when its leased tokens run low,
	// and a message deferred by dedup (outside it) never reaches it, so
	// the fleet store stalls first.
	next := 10
	stall := func(p *brokertest.StallProxy, metric string) {
		p.SetStall(true)
		for end := time.Now().Add(30 * time.Second); toSum(smPoints(t, e.reader), metric) == 0; next += 5 {
			if time.Now().After(end) {
				t.Fatalf("%s not counted in 30 s", metric)
			}
			pub(next, 5)
			time.Sleep(50 * time.Millisecond)
		}
	}
	stall(e.fleetProxy, "levee.fleet.fallbacks")
	stall(e.dedupProxy, "levee.dedup.store.errors")
	pub(next, 10)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := e.svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("closed in %v", time.Since(start))
	pts := smPoints(t, e.reader)
	e.res.mu.Lock()
	t.Logf("router: %d ok, %d deferred, %d canceled, %d failed; metrics %v", e.res.ok, e.res.deferred, e.res.canceled, e.res.failed, pts)
	e.res.mu.Unlock()
	toCheckOutcomes(t, pts, e.sr, e.res)
	for k, w := range map[string]int64{
		"levee.handler.messages nacked":        0,
		"levee.handler.messages dead_lettered": 0,
		"levee.breaker.paused":                 0,
		"levee.priority.queue.depth":           0,
		"levee.priority.slots.in_use":          0,
		"levee.fleet.degraded":                 0,
	} {
		if got := toSum(pts, k); got != w {
			t.Errorf("%s after Close: got %d, want %d", k, got, w)
		}
	}
}
