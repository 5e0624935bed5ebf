//go:build integration

package service_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// cycleStart builds, registers and runs one service of soakYAML.
func cycleStart(t *testing.T, yaml string, deps config.Deps, topic string, load *soakLoad) (*service.Service, context.CancelFunc) {
	t.Helper()
	svc, err := service.New(context.Background(), parse(t, yaml), deps)
	if err != nil {
		t.Fatal(err)
	}
	svc.Handle("work", topic, load.handle)
	if err := svc.HandleBatch("batched", topic+"_b", load.batch); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	select {
	case <-svc.Running():
	case err := <-ran:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	return svc, cancel
}

// cyclePublish publishes n messages of cycle i to topic, the first a
// poison one, each of a customer of its own.
func cyclePublish(t *testing.T, svc *service.Service, topic string, i, n int) {
	t.Helper()
	for j := range n {
		p := "ok"
		if j == 0 {
			p = "poison"
		}
		m := message.NewMessage(watermill.NewUUID(), []byte(p))
		m.Metadata.Set("customer", fmt.Sprintf("c%d-%d", i, j))
		m.Metadata.Set("order_id", m.UUID)
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartStopCycles starts and stops a service of the whole stack
// LEVEE_CYCLES times (skipped when unset) per transport, each run processing
// messages, and logs goroutines, fds and connections after each stop.
func TestStartStopCycles(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LEVEE_CYCLES"))
	if n == 0 {
		t.Skip("LEVEE_CYCLES unset")
	}
	only := os.Getenv("LEVEE_SOAK_TRANSPORT")
	prefix := brokertest.Name("cyc")
	cases := soakCases(t, prefix, 4)
	for _, c := range cases {
		if only != "" && only != c.name {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			brokertest.SkipIfDown(t, fmt.Sprintf("127.0.0.1:%d", c.port))
			s, err := redisdedup.Open(context.Background(), brokertest.RedisURL(), prefix)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			tp := sdktrace.NewTracerProvider()
			defer func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) }()
			deps := config.Deps{DedupStore: s, MeterProvider: mp, TracerProvider: tp}
			topic := brokertest.Name("cyc")
			load := &soakLoad{}
			for i := range n {
				svc, cancel := cycleStart(t, soakYAML(c.transport, c.store), deps, topic, load)
				want := load.done.Load() + 5
				cyclePublish(t, svc, topic, i, 6)
				svcWait(t, "messages processed", func() bool { return load.done.Load() >= want })
				if err := svc.Close(); err != nil {
					t.Logf("close: %v", err)
				}
				cancel()
				if i%10 == 0 || i == n-1 {
					t.Logf("cycle %3d: heap %6.1f MB  goroutines %4d  fds %4d  conns %3d  series %4d", i, float64(brokertest.HeapInUse())/(1<<20),
						runtime.NumGoroutine(), fdCount(), brokertest.ConnsTo(c.port), seriesCount(t, reader))
				}
			}
		})
	}
}
