package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/internal/brokertest"
)

// BenchmarkAdaptersTransport measures consumed messages/s per transport with
// a handler doing 1 ms of (simulated) work, at concurrency 1, 8 and 32, on
// the real brokers on loopback. It runs only with LEVEE_BENCH_BROKERS=1 and
// skips transports that are unreachable. Messages are published before
// consumption starts; the timer covers consumption only.
func BenchmarkAdaptersTransport(b *testing.B) {
	if os.Getenv("LEVEE_BENCH_BROKERS") != "1" {
		b.Skip("set LEVEE_BENCH_BROKERS=1 to run against the brokers on loopback")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	kinds := []struct {
		name string
		opts []adapters.Option
	}{
		{"gochannel", []adapters.Option{adapters.WithGoChannelPersistent(true)}},
		{"amqp", []adapters.Option{adapters.WithAMQP(brokertest.AMQPURL())}},
		{"kafka", []adapters.Option{adapters.WithKafka(cluster.ListenAddrs()...)}},
		{"nats", []adapters.Option{adapters.WithNATS(brokertest.NATSURL())}},
		{"redis", []adapters.Option{adapters.WithRedis(brokertest.RedisAddr())}},
		{"postgres", []adapters.Option{adapters.WithPostgres(brokertest.PostgresURL()), adapters.WithPostgresPollInterval(10 * time.Millisecond)}},
	}
	for _, k := range kinds {
		for _, n := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/concurrency=%d", k.name, n), func(b *testing.B) {
				opts := append(append([]adapters.Option(nil), k.opts...), adapters.WithConcurrency(n))
				if k.name != "postgres" && k.name != "gochannel" {
					opts = append(opts, adapters.WithConsumerGroup("bench-"+watermill.NewShortUUID()))
				}
				tr, err := adapters.New(context.Background(), opts...)
				if err != nil {
					b.Skip(err)
				}
				defer tr.Close()
				topic := "bench_" + strings.ToLower(watermill.NewShortUUID())
				if si, ok := tr.Subscriber.(message.SubscribeInitializer); ok {
					if err := si.SubscribeInitialize(topic); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < b.N; i++ {
					if err := tr.Publisher.Publish(topic, message.NewMessage(strconv.Itoa(i), []byte("x"))); err != nil {
						b.Fatal(err)
					}
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				b.ResetTimer()
				ch, err := tr.Subscriber.Subscribe(ctx, topic)
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				wg.Add(b.N)
				go func() {
					for m := range ch {
						go func() {
							time.Sleep(time.Millisecond)
							m.Ack()
							wg.Done()
						}()
					}
				}()
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			})
		}
	}
}
