//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// failingOutput is the publisher of a handler's produced messages: it
// fails the first publish of each produced message, then hands them on.
type failingOutput struct {
	inner  message.Publisher
	mu     sync.Mutex
	failed map[string]bool
}

func (p *failingOutput) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	fail := false
	for _, m := range msgs {
		if !p.failed[m.UUID] {
			p.failed[m.UUID], fail = true, true
		}
	}
	p.mu.Unlock()
	if fail {
		return errors.New("output publisher down")
	}
	return p.inner.Publish(topic, msgs...)
}

func (p *failingOutput) Close() error { return nil }

// TestDedupProducedMessagesOverBrokers: over every broker, a service
// whose handler (added to the service's router with an output topic)
// returns a message to publish, behind dlq and dedup on the Redis store. The first publish of
// each output fails, so the router Nacks the message and the broker
// redelivers it. Every output must arrive: the dedup layer marked the
// identity done before the router's publish, so the redelivery was acked
// as a duplicate without running and the output was lost.
func TestDedupProducedMessagesOverBrokers(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kaddr := cluster.ListenAddrs()[0]
	for _, tc := range []struct{ name, transport, url string }{
		{"amqp", fmt.Sprintf("{kind: amqp, concurrency: 4, amqp: {url: %q}}", brokertest.AMQPURL()), brokertest.AMQPURL()},
		{"nats", fmt.Sprintf("{kind: nats, concurrency: 4, nats: {url: %q}}", brokertest.NATSURL()), brokertest.NATSURL()},
		{"redis", fmt.Sprintf("{kind: redis, concurrency: 4, redis: {addr: %q}}", brokertest.RedisAddr()), brokertest.RedisURL()},
		{"postgres", fmt.Sprintf("{kind: postgres, concurrency: 4, postgres: {url: %q, poll_interval: 20ms}}", brokertest.PostgresURL()), brokertest.PostgresURL()},
		{"kafka", fmt.Sprintf("{kind: kafka, concurrency: 4, kafka: {brokers: [%q]}}", kaddr), brokertest.RedisURL()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokertest.SkipIfDown(t, tc.url)
			brokertest.SkipIfDown(t, brokertest.RedisURL())
			ctx := context.Background()
			prefix := brokertest.Name("levee_ddout_" + tc.name)
			store, err := redisdedup.Open(ctx, brokertest.RedisURL(), prefix+":")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = store.Close(); redisDel(t, prefix) }()
			y := fmt.Sprintf("transport: %s\nhandlers:\n  enrich:\n    dlq: {retry: {max_attempts: 3, initial: 10ms, max: 50ms}}\n"+
				"    dedup: {store: shared, lease: 10s}\n", tc.transport)
			svc, err := service.New(ctx, parse(t, y), config.Deps{DedupStore: store})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			in, out := prefix+"_in", prefix+"_out"

			const n = 20
			var runs atomic.Int64
			svc.Router.AddHandler("enrich", in, svc.Transport.Subscriber, out,
				&failingOutput{inner: svc.Transport.Publisher, failed: map[string]bool{}},
				func(m *message.Message) ([]*message.Message, error) {
					runs.Add(1)
					return []*message.Message{message.NewMessage("out-"+m.UUID, m.Payload)}, nil
				})
			var mu sync.Mutex
			got := map[string]int{}
			all := make(chan struct{})
			svc.Handle("sink", out, func(m *message.Message) error {
				mu.Lock()
				defer mu.Unlock()
				got[m.UUID]++
				if len(got) == n && got[m.UUID] == 1 {
					close(all)
				}
				return nil
			})
			rctx, cancel := context.WithCancel(ctx)
			ran := make(chan struct{})
			go func() { defer close(ran); _ = svc.Run(rctx) }()
			defer func() {
				// Stop consuming before the topics go: a Redis stream
				// deleted under a reading subscriber keeps its goroutine
				// 500 ms past Close.
				cancel()
				<-ran
				_ = svc.Transport.DeleteTopics(context.Background(), in, out, in+".dlq")
			}()
			<-svc.Running()
			for i := range n {
				if err := svc.Transport.Publisher.Publish(in, message.NewMessage(fmt.Sprintf("m%02d", i), []byte("{}"))); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-all:
			case <-time.After(30 * time.Second):
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("handler runs: %d; outputs delivered: %d of %d", runs.Load(), len(got), n)
			if len(got) != n {
				t.Errorf("outputs of %d messages arrived, want %d: a redelivery after a failed publish was acked as a duplicate", len(got), n)
			}
			if r := runs.Load(); r != 2*n {
				t.Errorf("handler runs: got %d, want %d (each message once, and once more after its output failed to publish)", r, 2*n)
			}
		})
	}
}
