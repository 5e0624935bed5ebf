//go:build integration

package service_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// transportFrames name the code a transport's subscriptions run: none of
// it may still run once service.Close returned. (Sarama's own consumer
// goroutines end a moment after its Close, which does not wait for them,
// and watermill-kafka closes each subscription's Sarama client in a
// goroutine its Close does not wait for; it waits for the sessions.)
var transportFrames = []string{"watermill-kafka", "github.com/levee-dev/levee/adapters/kafka.",
	"github.com/levee-dev/levee/adapters/internal/fanin."}

// stillRunning returns the stacks of the goroutines that run one of
// frames.
func stillRunning(frames []string) []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		// watermill-kafka's goroutine that closes the Sarama client once
		// the subscription ended (consumeMessages.func2 in v3.0.6,
		// subscriber.go:257), inside that Close or the instant before it
		// (1 CI run: runnable at its first line)
		if strings.Contains(g, "sarama.(*client).Close") || strings.Contains(g, "kafka.(*Subscriber).consumeMessages.func2") {
			continue
		}
		for _, f := range frames {
			if strings.Contains(g, f) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// TestCloseReturnsStopped starts and stops a service of the whole stack
// over Kafka, five times, each run processing messages, and checks that
// nothing of the transport still runs once Close returned. The router
// closes the subscriber itself and returns before that close does; the
// service's own close of the transport returned at once, so Close
// returned while the Kafka consumer still committed its offsets and left
// its group: 170 goroutines and 8 connections, gone if the process exited
// then (TestFanInCloseWaitsForCloseInProgress).
func TestCloseReturnsStopped(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kaddr := cluster.ListenAddrs()[0]
	prefix := brokertest.Name("close")
	t.Cleanup(func() { redisDel(t, prefix) })
	ds, err := redisdedup.Open(context.Background(), brokertest.RedisURL(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ds.Close() })
	yaml := soakYAML(fmt.Sprintf("{kind: kafka, concurrency: 4, consumer_group: %s, kafka: {brokers: [%q]}}", prefix, kaddr),
		fmt.Sprintf("{kind: redis, url: %q, prefix: %s}", brokertest.RedisURL(), prefix))
	topic := brokertest.Name("close")
	load := &soakLoad{}
	for i := range 5 {
		svc, cancel := cycleStart(t, yaml, config.Deps{DedupStore: ds}, topic, load)
		want := load.done.Load() + 3
		cyclePublish(t, svc, topic, i, 4)
		svcWait(t, "messages processed", func() bool { return load.done.Load() >= want })
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		cancel()
		if left := stillRunning(transportFrames); len(left) > 0 {
			t.Fatalf("run %d: %d goroutines of the transport still run after Close returned, the first:\n%s", i, len(left), left[0])
		}
	}
}
