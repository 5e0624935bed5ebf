package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/config"
)

// fleetReplicas and fleetRate are the -fleet demo's shape: 3 replicas of
// the payments handler, one fleet limit of 100 payments per second.
const (
	fleetReplicas = 3
	fleetRate     = 100
)

// fleetYAML configures the payments handler of every replica: the same
// fleet limit and fleet breaker (docs/FLEET.md), each replica also capped
// at 80/s of its own.
const fleetYAML = `
handlers:
  payments:
    recover: true
    fleet:
      on_store_error: local
      ratelimit: {rate: %d/s, local_rate: 80/s}
      breaker: {failure_ratio: 50%%, min_requests: 20, open_for: 1s}
`

// runFleetDemo runs fleetReplicas replicas of the payments handler (each
// its own stack built from fleetYAML, as separate processes would) against
// one fleet limit on the Redis at url, charges o.orders orders through
// them and reports each replica's share and the fleet's rate.
func runFleetDemo(ctx context.Context, o options, out io.Writer) error {
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "levee_orders_fleet_" + hex.EncodeToString(b[:])
	store, err := fleetredis.Open(ctx, o.fleet, prefix, 2*time.Second)
	if err != nil {
		return err
	}
	defer store.Close()
	cfg, err := config.Parse("fleet.yaml", fmt.Appendf(nil, fleetYAML, fleetRate), nil, nil)
	if err != nil {
		return err
	}
	gw := NewGateway(o.service, 0, 0, 0, o.seed)
	orders := make(chan *message.Message)
	var counts [fleetReplicas]atomic.Int64
	var wg sync.WaitGroup
	for r := range fleetReplicas {
		applied, err := config.Build(cfg, config.Deps{FleetStore: store})
		if err != nil {
			return err
		}
		defer applied.Close()
		h := applied.Stack("payments").Middleware(func(msg *message.Message) ([]*message.Message, error) {
			order, err := decodeOrder(msg.Payload)
			if err != nil {
				return nil, err
			}
			if err := gw.Charge(order); err != nil {
				return nil, err
			}
			counts[r].Add(1)
			return nil, nil
		})
		for range 4 { // each replica handles 4 messages at a time
			wg.Add(1)
			go func() {
				defer wg.Done()
				for msg := range orders {
					for _, err := h(msg); err != nil && ctx.Err() == nil; _, err = h(msg) {
						time.Sleep(10 * time.Millisecond) // a deferral or failure: redelivered
					}
				}
			}()
		}
	}
	fmt.Fprintf(out, "fleet demo: %d replicas of payments, fleet limit %d/s (each also capped at 80/s), %d orders\n",
		fleetReplicas, fleetRate, o.orders)
	start := time.Now()
	for i := range o.orders {
		orders <- message.NewMessage(fmt.Sprint(i), fmt.Appendf(nil, `{"id":"o%d","customer":"c","amount_cents":100,"items":[]}`, i))
	}
	close(orders)
	wg.Wait()
	el := time.Since(start).Seconds()
	var total int64
	for r := range fleetReplicas {
		n := counts[r].Load()
		total += n
		fmt.Fprintf(out, "  replica %d: %d payments (%.0f/s)\n", r+1, n, float64(n)/el)
	}
	fmt.Fprintf(out, "  fleet: %d payments in %.2fs = %.0f/s (limit %d/s; the first lease of each replica is a burst)\n",
		total, el, float64(total)/el, fleetRate)
	return nil
}
