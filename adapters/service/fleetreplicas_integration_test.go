//go:build integration

package service_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/fleet"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestFleetReplicasShareTheRate: three replicas, each a process running
// service.Run of one levee.yaml whose handler has a fleet limit of 200/s,
// consume one RabbitMQ queue with a backlog; a replica joins at 3s, one
// leaves with SIGTERM at 5s, one is SIGKILLed at 7s while another joins.
// Every message is handled; over every window the fleet admits at most
// rate x window + burst + one lease per replica (docs/FLEET.md); a
// SIGTERMed replica exits promptly.
func TestFleetReplicasShareTheRate(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	brokertest.SkipIfDown(t, brokertest.AMQPURL())
	const rate, lease, msgs = 200, 40, 1800 // lease: rate x 200ms, also the burst
	topic := brokertest.Name("svc_fleet")
	prefix := freshFleetPrefix(t)
	y := fmt.Sprintf("transport: {kind: amqp, concurrency: 8, amqp: {url: %q}}\nfleet: {store: %q, prefix: %q}\n"+
		"handlers:\n  pay:\n    fleet: {store_timeout: 500ms, ratelimit: {rate: %d/s}}\n",
		brokertest.AMQPURL(), brokertest.RedisURL(), prefix, rate)
	fr := newFleetReplicas(t, y, topic)
	fr.add()
	fr.add()
	pub := publisherOf(t, y)
	fr.at(1000)
	want := map[string]bool{}
	for i := range msgs {
		m := message.NewMessage(fmt.Sprintf("m%04d", i), nil)
		want[m.UUID] = true
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	fr.at(3000)
	fr.add()
	fr.at(5000)
	d := fr.stop(0, syscall.SIGTERM)
	t.Logf("replica 0 exited %v after SIGTERM", d)
	if d > 10*time.Second {
		t.Errorf("replica 0 took %v to exit after SIGTERM, want a prompt shutdown", d)
	}
	fr.at(7000)
	fr.stop(1, syscall.SIGKILL)
	fr.add()
	at, _ := fr.handledAll(want)
	fr.stop(2, syscall.SIGTERM)
	fr.stop(3, syscall.SIGTERM)
	end := at[len(at)-1]
	t.Logf("%d calls of %d messages, the last at %dms; %.1f/s from the first to the last", len(at), msgs, end,
		float64(len(at))/(float64(end-at[0])/1000))
	checkWindows(t, at, end+1, rate, lease, 100, 1000, 5000)
}

// checkWindows checks the calls at (ms) before end against the fleet's
// bound (docs/FLEET.md) over each window (ms): rate x window + burst (one
// lease) + one lease per replica (3).
func checkWindows(t *testing.T, at []int64, end int64, rate, lease int, windows ...int64) {
	t.Helper()
	for _, w := range windows {
		got := worstWindow(at, w, 0, end)
		bound := int(int64(rate)*w/1000) + lease + 3*lease
		t.Logf("worst %dms window: %d calls, bound %d", w, got, bound)
		if got > bound {
			t.Errorf("the fleet admitted %d in %dms, want at most rate x window + burst + 3 leases = %d", got, w, bound)
		}
	}
}

// TestFleetReplicasRideARedisStall: three service.Run replicas share a
// fleet limit of 200/s and a per-key fleet limit (a hostile producer: a
// new customer_id on every message, max_keys 100) on a Redis reached
// through a proxy that stops answering from 3s to 6s. With on_store_error
// local the replicas go on at their shares: every message is handled,
// the fleet's calls never stop for long, no window exceeds what the
// fallback allows, and a replica SIGTERMed during the stall exits
// promptly (its limits' give-back calls are bounded by store_timeout).
func TestFleetReplicasRideARedisStall(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	brokertest.SkipIfDown(t, brokertest.AMQPURL())
	const rate, lease, msgs = 200, 40, 1400
	proxy := brokertest.NewStallProxy(t, brokertest.RedisAddr())
	topic := brokertest.Name("svc_fleet_stall")
	prefix := freshFleetPrefix(t)
	y := fmt.Sprintf("transport: {kind: amqp, concurrency: 8, amqp: {url: %q}}\nfleet: {store: \"redis://%s/0\", prefix: %q}\n"+
		"handlers:\n  pay:\n    fleet: {store_timeout: 200ms, ratelimit: {rate: %d/s, per_key: {rate: 5/s, metadata: customer_id, max_keys: 100}}}\n",
		brokertest.AMQPURL(), proxy.Addr(), prefix, rate)
	fr := newFleetReplicas(t, y, topic)
	for range 3 {
		fr.add()
	}
	pub := publisherOf(t, y)
	fr.at(1000)
	want := map[string]bool{}
	for i := range msgs {
		m := message.NewMessage(fmt.Sprintf("m%04d", i), nil)
		m.Metadata.Set("customer_id", fmt.Sprintf("c%d", i))
		want[m.UUID] = true
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	fr.at(3000)
	proxy.SetStall(true)
	fr.at(4000)
	d := fr.stop(0, syscall.SIGTERM)
	t.Logf("replica 0 exited %v after SIGTERM during the stall", d)
	if d > 5*time.Second {
		t.Errorf("replica 0 took %v to exit after SIGTERM during the stall, want a prompt shutdown", d)
	}
	fr.at(6000)
	proxy.SetStall(false)
	at, _ := fr.handledAll(want)
	fr.stop(1, syscall.SIGTERM)
	fr.stop(2, syscall.SIGTERM)
	var gap, gapAt int64
	for i := 1; i < len(at); i++ {
		if g := at[i] - at[i-1]; g > gap {
			gap, gapAt = g, at[i]
		}
	}
	t.Logf("%d calls of %d messages, from %dms to %dms; longest pause between calls %dms (at %dms)", len(at), msgs, at[0], at[len(at)-1], gap, gapAt)
	if gap > 1000 {
		t.Errorf("the fleet handled nothing for %dms (until %dms), want calls to go on through the stall", gap, gapAt)
	}
	checkWindows(t, at, at[len(at)-1]+1, rate, lease, 1000, 3000)
}

// TestFleetReplicasShareABreaker: three service.Run replicas of one
// levee.yaml with a fleet breaker consume one RabbitMQ queue fed at
// 100/s. The downstream of replica 0 alone fails: the fleet opens, and
// within report_every + store_timeout every replica stops calling its
// handler (no Nack storm) until open_for ends; after one probe the drain
// ramps the fleet's throughput (less in its first half than in its
// second); the kill switch (force open) holds every replica, and one
// SIGTERMed while it holds messages exits promptly; every message is
// handled in the end.
func TestFleetReplicasShareABreaker(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	brokertest.SkipIfDown(t, brokertest.AMQPURL())
	const follow = 200 + 500 // report_every + store_timeout: every replica knows by then
	topic := brokertest.Name("svc_fleet_br")
	prefix := freshFleetPrefix(t)
	y := fmt.Sprintf("transport: {kind: amqp, concurrency: 8, amqp: {url: %q}}\nfleet: {store: %q, prefix: %q}\n"+
		"handlers:\n  pay:\n    fleet: {store_timeout: 500ms, breaker: {failure_ratio: 20%%, min_requests: 20, window: 2s, open_for: 2s, drain: {window: 2s}}}\n",
		brokertest.AMQPURL(), brokertest.RedisURL(), prefix)
	fr := newFleetReplicas(t, y, topic)
	down := t.TempDir() + "/down"
	fr.add("FLEET_FAIL=" + down)
	fr.add()
	fr.add()
	states := watchState(t, fr, prefix+":br:pay:s")
	pub := publisherOf(t, y)
	want := map[string]bool{}
	var pubErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		fr.at(1000)
		for i := range 1000 { // 100/s for 10s
			fr.at(1000 + int64(i)*10)
			m := message.NewMessage(fmt.Sprintf("m%04d", i), nil)
			if pubErr = pub.Publish(topic, m); pubErr != nil {
				return
			}
		}
	})
	for i := range 1000 {
		want[fmt.Sprintf("m%04d", i)] = true
	}
	fr.at(3000)
	if err := os.WriteFile(down, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := states.waitFor(t, "open", 3000)
	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	draining := states.waitFor(t, "draining", open.at)
	fr.at(draining.at + 2500)
	store, err := fleetredis.Open(context.Background(), brokertest.RedisURL(), prefix, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	forced := time.Since(fr.start).Milliseconds()
	if err := store.SetForce(context.Background(), "pay", fleet.ForceOpen); err != nil {
		t.Fatal(err)
	}
	fr.at(forced + 1000)
	d := fr.stop(2, syscall.SIGTERM) // it holds messages on the forced breaker
	t.Logf("replica 2 exited %v after SIGTERM while forced open", d)
	if d > 5*time.Second {
		t.Errorf("replica 2 took %v to exit after SIGTERM while forced open, want a prompt shutdown", d)
	}
	fr.at(forced + 2000)
	if err := store.SetForce(context.Background(), "pay", fleet.ForceNone); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	fr.handledAll(want)
	for i := range 2 {
		fr.stop(i, syscall.SIGTERM)
	}
	all, _ := fr.calls(true)
	t.Logf("open at %dms (baseline %s/s), draining at %dms, forced open at %dms", open.at, open.base, draining.at, forced)
	if n := callsIn(all, open.at+follow, draining.at-follow); n > 1 {
		t.Errorf("%d handler calls while the fleet was open (%dms to %dms), want at most the one probe", n, open.at+follow, draining.at-follow)
	}
	if n := callsIn(all, forced+follow, forced+2000); n > 0 {
		t.Errorf("%d handler calls while forced open (%dms to %dms), want none", n, forced+follow, forced+2000)
	}
	ok, _ := fr.calls(false)
	first, second := callsIn(ok, draining.at, draining.at+1000), callsIn(ok, draining.at+1000, draining.at+2000)
	t.Logf("drain: %d calls in its first second, %d in its second", first, second)
	if first >= second {
		t.Errorf("drain: %d calls in its first second, %d in its second, want a ramp", first, second)
	}
	// The ramp from 10% to 100% of the baseline over 2s admits 0.55 x 2s
	// of it, plus the drain pool's lease (200ms of it) held ahead.
	base, err := strconv.ParseFloat(open.base, 64)
	if err != nil {
		t.Fatal(err)
	}
	if bound := base*0.55*2 + base*0.2; float64(first+second) > bound*1.1 {
		t.Errorf("drain: %d calls in its 2s, want at most the ramp's %.0f + 10%%", first+second, bound)
	}
}
