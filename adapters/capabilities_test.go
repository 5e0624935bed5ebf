package adapters_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/config"
)

func TestCapabilitiesTable(t *testing.T) {
	amqpURL := &adapters.AMQPConfig{URL: "amqp://guest:guest@127.0.0.1:5672/"}
	cases := []struct {
		name string
		cfg  adapters.TransportConfig
		want adapters.Capabilities
	}{
		{"gochannel default", adapters.TransportConfig{},
			adapters.Capabilities{Kind: "gochannel", System: "gochannel", MaxInFlight: 1}},
		{"amqp classic", adapters.TransportConfig{Kind: "amqp", Concurrency: 8, AMQP: amqpURL},
			adapters.Capabilities{Kind: "amqp", System: "rabbitmq", MaxInFlight: 8, AckDeadline: 30 * time.Minute}},
		{"amqp priority", adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: amqpURL.URL, MaxPriority: intp(10)}},
			adapters.Capabilities{Kind: "amqp", System: "rabbitmq", MaxInFlight: 1, AckDeadline: 30 * time.Minute, NativePriority: true}},
		{"amqp declared consumer timeout", adapters.TransportConfig{Kind: "amqp", AckDeadline: 30 * time.Second, AMQP: amqpURL},
			adapters.Capabilities{Kind: "amqp", System: "rabbitmq", MaxInFlight: 1, AckDeadline: 30 * time.Second}},
		{"amqp without priority", adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: amqpURL.URL, MaxPriority: intp(0)}},
			adapters.Capabilities{Kind: "amqp", System: "rabbitmq", MaxInFlight: 1, AckDeadline: 30 * time.Minute}},
		{"amqp quorum", adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: amqpURL.URL, QueueType: "quorum"}},
			adapters.Capabilities{Kind: "amqp", System: "rabbitmq", MaxInFlight: 1, AckDeadline: 30 * time.Minute, DeliveryCount: true}},
		{"kafka", adapters.TransportConfig{Kind: "kafka", Concurrency: 4, Kafka: &adapters.KafkaConfig{Brokers: []string{"h:9092"}, Partitions: 12}},
			adapters.Capabilities{Kind: "kafka", System: "kafka", MaxInFlight: 4, OrderedPerKey: true}},
		{"nats", adapters.TransportConfig{Kind: "nats", Concurrency: 16, AckDeadline: 10 * time.Second, NATS: &adapters.NATSConfig{URL: "nats://h:4222"}},
			adapters.Capabilities{Kind: "nats", System: "nats", MaxInFlight: 16, AckDeadline: 10 * time.Second, NativeDelay: true, DeliveryCount: true}},
		{"redis", adapters.TransportConfig{Kind: "redis", Concurrency: 2, Redis: &adapters.RedisConfig{Addr: "h:6379"}},
			adapters.Capabilities{Kind: "redis", System: "redis", MaxInFlight: 2, AckDeadline: 30 * time.Second}},
		{"postgres", adapters.TransportConfig{Kind: "postgres", Postgres: &adapters.PostgresConfig{URL: "postgres://h/db"}},
			adapters.Capabilities{Kind: "postgres", System: "postgresql", MaxInFlight: 1, AckDeadline: 30 * time.Second, NativeDelay: true}},
		{"invalid", adapters.TransportConfig{Kind: "sqs"}, adapters.Capabilities{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Capabilities(); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFromConfig(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("transport:\n  kind: nats\n  ack_deadline: 10s\n  nats: {url: \"nats://127.0.0.1:4222\"}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := adapters.FromConfig(cfg)
	if err != nil || tc.Kind != "nats" || tc.AckDeadline != 10*time.Second || tc.NATS == nil {
		t.Fatalf("got %+v, %v", tc, err)
	}
	bad, err := config.Parse("levee.yaml", []byte("transport:\n  kind: kafka\n  ack_deadline: 10s\n  kafka: {brokers: [\"h:9092\"]}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adapters.FromConfig(bad); !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "levee.yaml:3: transport.ack_deadline: ") {
		t.Fatalf("got %v, want a located ErrInvalidConfig", err)
	}
	// What a failed config.Load returns, used without checking the error
	// (it panicked; service.New calls FromConfig first).
	if _, err := adapters.FromConfig(nil); !errors.Is(err, config.ErrInvalidConfig) {
		t.Fatalf("nil config: got %v, want ErrInvalidConfig", err)
	}
}
