//go:build integration

package adapters_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/priority"
)

// Priority only matters when several messages wait at once. With
// concurrent consumption every transport hands the scheduler enough
// messages: behind one busy slot, VIP messages published last run before
// the bulk ones published first, on every transport.
func TestPriorityOverTransports(t *testing.T) {
	const bulk, vip = 10, 3
	const total = bulk + vip
	for _, tc := range transportCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, tc, tc.group, adapters.WithConcurrency(16))
			sched, err := priority.NewScheduler(priority.WithSlots(1))
			require.NoError(t, err)
			t.Cleanup(func() { _ = sched.Close() })

			router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
			require.NoError(t, err)
			topic := "levee_prio_" + watermill.NewShortUUID()
			var (
				mu    sync.Mutex
				order []string
				done  = make(chan struct{})
			)
			h := router.AddConsumerHandler("prio", topic, tr.Subscriber, func(msg *message.Message) error {
				mu.Lock()
				first := len(order) == 0
				order = append(order, string(msg.Payload))
				if len(order) == total {
					close(done)
				}
				mu.Unlock()
				if first {
					// Hold the only slot until every other message waits
					// for it, so the scheduler has all of them to order.
					deadline := time.Now().Add(30 * time.Second)
					for sched.Stats().Waiting < total-1 {
						if time.Now().After(deadline) {
							return fmt.Errorf("only %d messages reached the scheduler", sched.Stats().Waiting)
						}
						time.Sleep(5 * time.Millisecond)
					}
				}
				return nil
			})
			h.AddMiddleware(sched.Middleware)
			ctx, cancel := context.WithCancel(context.Background())
			runDone := make(chan struct{})
			go func() { defer close(runDone); _ = router.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-runDone })
			<-router.Running()

			var msgs []*message.Message
			for i := 0; i < bulk; i++ {
				msgs = append(msgs, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("bulk-%d", i))))
			}
			for i := 0; i < vip; i++ {
				m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("vip-%d", i)))
				priority.Set(m, priority.MaxPriority)
				msgs = append(msgs, m)
			}
			for _, m := range msgs {
				require.NoError(t, tr.Publisher.Publish(topic, m))
			}
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("processed %d of %d: %v", len(order), total, order)
			}
			mu.Lock()
			defer mu.Unlock()
			// The first message to arrive took the slot before the others
			// were queued (it may be a VIP one: delivery is concurrent);
			// every other VIP message must run before any waiting bulk one.
			vips := 0
			for _, p := range order[:1+vip] {
				if p[:3] == "vip" {
					vips++
				}
			}
			if vips < vip {
				t.Fatalf("only %d of the %d VIP messages ran among the first %d: %v", vips, vip, 1+vip, order)
			}
		})
	}
}
