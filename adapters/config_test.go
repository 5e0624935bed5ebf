package adapters_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/internal/config"
)

func intp(n int) *int { return &n }

func TestTransportConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     adapters.TransportConfig
		wantKey string // "" means valid
		wantMsg string
	}{
		{name: "zero is gochannel", cfg: adapters.TransportConfig{}},
		{name: "gochannel persistent", cfg: adapters.TransportConfig{Kind: "gochannel", GoChannel: &adapters.GoChannelConfig{Persistent: true}}},
		{name: "unknown kind", cfg: adapters.TransportConfig{Kind: "sqs"}, wantKey: "kind", wantMsg: "gochannel, amqp, kafka, nats, redis, postgres"},
		{name: "negative concurrency", cfg: adapters.TransportConfig{Concurrency: -1}, wantKey: "concurrency"},
		{name: "huge concurrency", cfg: adapters.TransportConfig{Concurrency: 5000}, wantKey: "concurrency"},
		{name: "negative ack deadline", cfg: adapters.TransportConfig{AckDeadline: -time.Second}, wantKey: "ack_deadline"},
		{name: "kafka has no ack deadline, however short", cfg: adapters.TransportConfig{Kind: "kafka", AckDeadline: 500 * time.Millisecond, Kafka: &adapters.KafkaConfig{Brokers: []string{"h:9092"}}}, wantKey: "ack_deadline", wantMsg: "no ack deadline"},
		{name: "ack deadline under a second", cfg: adapters.TransportConfig{Kind: "nats", AckDeadline: time.Nanosecond, NATS: &adapters.NATSConfig{URL: "nats://h:4222"}}, wantKey: "ack_deadline", wantMsg: "under 1s"},
		{name: "kafka has no ack deadline", cfg: adapters.TransportConfig{Kind: "kafka", AckDeadline: time.Second, Kafka: &adapters.KafkaConfig{Brokers: []string{"h:9092"}}}, wantKey: "ack_deadline", wantMsg: "no ack deadline"},
		{name: "gochannel has no ack deadline", cfg: adapters.TransportConfig{AckDeadline: time.Second}, wantKey: "ack_deadline", wantMsg: "no ack deadline"},
		{name: "negative dial timeout", cfg: adapters.TransportConfig{DialTimeout: -time.Second}, wantKey: "dial_timeout"},
		{name: "section of other kind", cfg: adapters.TransportConfig{Kind: "kafka", Kafka: &adapters.KafkaConfig{Brokers: []string{"h:9092"}}, AMQP: &adapters.AMQPConfig{URL: "amqp://h/"}}, wantKey: "amqp", wantMsg: `kind is "kafka"`},
		{name: "amqp ok", cfg: adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: "amqp://guest:guest@127.0.0.1:5672/"}}},
		{name: "amqp missing url", cfg: adapters.TransportConfig{Kind: "amqp"}, wantKey: "amqp.url"},
		{name: "amqp wrong scheme", cfg: adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: "http://h/"}}, wantKey: "amqp.url", wantMsg: "scheme"},
		{name: "amqp priority too big", cfg: adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: "amqp://h/", MaxPriority: intp(256)}}, wantKey: "amqp.max_priority"},
		{name: "amqp priority off", cfg: adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: "amqp://h/", MaxPriority: intp(0)}}},
		{name: "amqp bad queue type", cfg: adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: "amqp://h/", QueueType: "stream"}}, wantKey: "amqp.queue_type"},
		{name: "amqp quorum with priority", cfg: adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: "amqp://h/", QueueType: "quorum", MaxPriority: intp(5)}}, wantKey: "amqp.max_priority"},
		{name: "kafka no brokers", cfg: adapters.TransportConfig{Kind: "kafka"}, wantKey: "kafka.brokers"},
		{name: "kafka bad broker", cfg: adapters.TransportConfig{Kind: "kafka", Kafka: &adapters.KafkaConfig{Brokers: []string{"nohost"}}}, wantKey: "kafka.brokers[0]"},
		{name: "kafka partitions below concurrency", cfg: adapters.TransportConfig{Kind: "kafka", Concurrency: 8, Kafka: &adapters.KafkaConfig{Brokers: []string{"h:9092"}, Partitions: 4}}, wantKey: "kafka.partitions"},
		{name: "nats missing url", cfg: adapters.TransportConfig{Kind: "nats"}, wantKey: "nats.url"},
		{name: "nats ok", cfg: adapters.TransportConfig{Kind: "nats", NATS: &adapters.NATSConfig{URL: "nats://127.0.0.1:4222"}}},
		{name: "redis missing addr", cfg: adapters.TransportConfig{Kind: "redis"}, wantKey: "redis.addr"},
		{name: "redis negative db", cfg: adapters.TransportConfig{Kind: "redis", Redis: &adapters.RedisConfig{Addr: "h:6379", DB: -1}}, wantKey: "redis.db"},
		{name: "postgres missing url", cfg: adapters.TransportConfig{Kind: "postgres"}, wantKey: "postgres.url"},
		{name: "postgres consumer group", cfg: adapters.TransportConfig{Kind: "postgres", ConsumerGroup: "g", Postgres: &adapters.PostgresConfig{URL: "postgres://h/db"}}, wantKey: "consumer_group"},
		{name: "postgres url of another database", cfg: adapters.TransportConfig{Kind: "postgres", Postgres: &adapters.PostgresConfig{URL: "mysql://u:hunter2@x/db"}}, wantKey: "postgres.url"},
		{name: "postgres bad sslmode", cfg: adapters.TransportConfig{Kind: "postgres", Postgres: &adapters.PostgresConfig{URL: "postgres://u:hunter2@127.0.0.1:5432/test?sslmode=bogus"}}, wantKey: "postgres.url", wantMsg: "sslmode"},
		{name: "postgres negative poll", cfg: adapters.TransportConfig{Kind: "postgres", Postgres: &adapters.PostgresConfig{URL: "postgres://h/db", PollInterval: -1}}, wantKey: "postgres.poll_interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, adapters.ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Key != tc.wantKey {
				t.Fatalf("got %v, want key %q", err, tc.wantKey)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("got %q, want it to contain %q", err, tc.wantMsg)
			}
			// New runs the same validation on the same section.
			_, nerr := adapters.New(context.Background(), tc.cfg.Options()...)
			if !errors.As(nerr, &fe) || fe.Key != tc.wantKey {
				t.Fatalf("New: got %v, want key %q", nerr, tc.wantKey)
			}
		})
	}
}

func TestTransportConfigFromYAML(t *testing.T) {
	cases := []struct {
		name, yaml string
		wantErr    string
	}{
		{name: "amqp", yaml: "transport:\n  kind: amqp\n  concurrency: 8\n  amqp: {url: \"amqp://guest:guest@127.0.0.1:5672/\", max_priority: 5}\n"},
		{name: "unknown key", yaml: "transport:\n  kind: amqp\n  amqp: {url: \"amqp://h/\", prio: 5}\n", wantErr: "prio"},
		{name: "unknown kind located", yaml: "transport:\n  kind: sqs\n", wantErr: "cfg.yaml:2: transport.kind"},
		{name: "postgres url pgx refuses located", yaml: "transport:\n  kind: postgres\n  postgres:\n    url: \"postgres://u:hunter2@127.0.0.1:5432/test?sslmode=bogus\"\n",
			wantErr: "cfg.yaml:4: transport.postgres.url"},
		// A zero the transport would read as its default is an error, as
		// the README's value syntax says: remove the key for the default.
		{name: "postgres poll_interval 0", yaml: "transport:\n  kind: postgres\n  postgres: {url: \"postgres://h/db\", poll_interval: 0s}\n",
			wantErr: "cfg.yaml:3: transport.postgres.poll_interval: \"0s\" is not allowed"},
		{name: "postgres max_conns 0", yaml: "transport:\n  kind: postgres\n  postgres: {url: \"postgres://h/db\", max_conns: 0}\n",
			wantErr: "cfg.yaml:3: transport.postgres.max_conns: \"0\" is not allowed"},
		{name: "kafka partitions 0", yaml: "transport:\n  kind: kafka\n  kafka: {brokers: [\"h:9092\"], partitions: 0}\n",
			wantErr: "cfg.yaml:3: transport.kafka.partitions: \"0\" is not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := config.Parse("cfg.yaml", []byte(tc.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			var root struct {
				Transport adapters.TransportConfig `yaml:"transport"`
			}
			err = doc.Decode(&root)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				if root.Transport.Concurrency != 8 || *root.Transport.AMQP.MaxPriority != 5 {
					t.Fatalf("got %+v", root.Transport)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestUnreachable checks that a broker nobody listens on fails New at once
// with ErrUnreachable naming the transport and the address.
func TestUnreachable(t *testing.T) {
	cases := []struct {
		name string
		opt  adapters.Option
		addr string
	}{
		{"amqp", adapters.WithAMQP("amqp://guest:guest@127.0.0.1:1/"), "127.0.0.1:1"},
		{"kafka", adapters.WithKafka("127.0.0.1:1"), "127.0.0.1:1"},
		{"nats", adapters.WithNATS("nats://127.0.0.1:1"), "127.0.0.1:1"},
		{"redis", adapters.WithRedis("127.0.0.1:1"), "127.0.0.1:1"},
		{"postgres", adapters.WithPostgres("postgres://postgres@127.0.0.1:1/test"), "127.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapters.New(context.Background(), tc.opt, adapters.WithDialTimeout(time.Second))
			if !errors.Is(err, adapters.ErrUnreachable) {
				t.Fatalf("got %v, want ErrUnreachable", err)
			}
			if !strings.Contains(err.Error(), tc.name+" at "+tc.addr) {
				t.Fatalf("got %q, want it to name %q", err, tc.name+" at "+tc.addr)
			}
		})
	}
}

func TestGoChannelCapabilities(t *testing.T) {
	tr, err := adapters.Build(context.Background(), adapters.TransportConfig{Concurrency: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	want := adapters.Capabilities{Kind: "gochannel", System: "gochannel", MaxInFlight: 3}
	if tr.Capabilities != want {
		t.Fatalf("got %+v, want %+v", tr.Capabilities, want)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// An explicit zero is an error in code as in YAML (transport.concurrency:
// 0 is rejected by the decoder), never the default in disguise.
func TestZeroOptionsAreErrors(t *testing.T) {
	for _, tc := range []struct {
		key string
		opt adapters.Option
	}{
		{"concurrency", adapters.WithConcurrency(0)},
		{"ack_deadline", adapters.WithAckDeadline(0)},
		{"dial_timeout", adapters.WithDialTimeout(0)},
	} {
		_, err := adapters.New(context.Background(), tc.opt)
		if !errors.Is(err, adapters.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), "0 is not allowed") {
			t.Errorf("%s: got %v, want ErrInvalidConfig naming the key", tc.key, err)
		}
	}
	tr, err := adapters.New(context.Background(), adapters.WithConcurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	_ = tr.Close()
}
