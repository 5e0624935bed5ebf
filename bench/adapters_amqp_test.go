package bench

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/internal/brokertest"
)

// BenchmarkAdaptersAMQPPublish measures one confirmed publish to a durable
// RabbitMQ queue, from 8 goroutines, through Levee's AMQP publisher
// (reconnecting connection, pool of confirm-mode channels) and through
// watermill-amqp v3's Publisher configured the same way (durable queue,
// ConfirmDelivery, a pool of 8 channels), which is what a user would
// otherwise pick. It runs only with LEVEE_BENCH_BROKERS=1.
func BenchmarkAdaptersAMQPPublish(b *testing.B) {
	if os.Getenv("LEVEE_BENCH_BROKERS") != "1" {
		b.Skip("set LEVEE_BENCH_BROKERS=1 to run against RabbitMQ on loopback")
	}
	url := brokertest.AMQPURL()
	// The queues are deleted afterwards: the shared server keeps nothing.
	deleteQueue := func(b *testing.B, name string) {
		conn, err := amqp.Dial(url)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			b.Error(err)
			return
		}
		if _, err := ch.QueueDelete(name, false, false, false); err != nil {
			b.Error(err)
		}
	}
	run := func(b *testing.B, pub message.Publisher, topic string) {
		b.ReportAllocs()
		b.SetParallelism(4) // 8 publishers on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("levee", func(b *testing.B) {
		tr, err := adapters.New(context.Background(), adapters.WithAMQP(url), adapters.WithAMQPMaxPriority(0), adapters.WithConcurrency(8))
		if err != nil {
			b.Skip(err)
		}
		defer tr.Close()
		topic := "bench_pub_" + strings.ToLower(watermill.NewShortUUID())
		defer deleteQueue(b, topic)
		run(b, tr.Publisher, topic)
	})
	b.Run("watermill_amqp", func(b *testing.B) {
		cfg := wamqp.NewDurableQueueConfig(url)
		cfg.Publish.ConfirmDelivery = true
		cfg.Publish.ChannelPoolSize = 8
		pub, err := wamqp.NewPublisher(cfg, watermill.NopLogger{})
		if err != nil {
			b.Skip(err)
		}
		defer pub.Close()
		sub, err := wamqp.NewSubscriber(cfg, watermill.NopLogger{})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		topic := "bench_pub_" + strings.ToLower(watermill.NewShortUUID())
		defer deleteQueue(b, topic)
		// watermill-amqp's publisher does not declare the queue: without
		// this the messages would be dropped as unroutable (and cheaper).
		if err := sub.SubscribeInitialize(topic); err != nil {
			b.Fatal(err)
		}
		run(b, pub, topic)
	})
}
