package chaos

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// Loopback servers of the project's machines (DESIGN.md).
const (
	loopbackAMQP     = "amqp://guest:guest@127.0.0.1:5672/"
	loopbackNATS     = "nats://127.0.0.1:4222"
	loopbackPostgres = "postgres://postgres@127.0.0.1:5432/test"
	loopbackRedis    = "redis://127.0.0.1:6379/0"
)

// transportConfig is the plan's transport on loopback (brokerURL overrides
// the NATS server or the RabbitMQ node, for a private one).
func transportConfig(p *Plan, brokerURL string) adapters.TransportConfig {
	tc := adapters.TransportConfig{Concurrency: 32}
	switch p.Transport {
	case "nats", "postgres", "redis":
		// Transports with a redelivery deadline (kafka and gochannel have
		// none and reject the key; on amqp it would declare RabbitMQ's
		// consumer timeout, 30m by default, which is what amqp gets).
		tc.AckDeadline = p.AckDeadline
	}
	switch p.Transport {
	case "gochannel":
		tc.Kind, tc.Concurrency = adapters.KindGoChannel, 256
	case "amqp":
		tc.Kind, tc.AMQP = adapters.KindAMQP, &adapters.AMQPConfig{URL: loopbackAMQP}
	case "amqp-quorum":
		tc.Kind, tc.AMQP = adapters.KindAMQP, &adapters.AMQPConfig{URL: loopbackAMQP, QueueType: "quorum"}
	case "nats":
		tc.Kind, tc.NATS = adapters.KindNATS, &adapters.NATSConfig{URL: loopbackNATS}
		if brokerURL != "" {
			tc.NATS.URL = brokerURL
		}
	case "postgres":
		tc.Kind, tc.Concurrency = adapters.KindPostgres, 4
		tc.Postgres = &adapters.PostgresConfig{URL: loopbackPostgres}
	case "kafka":
		tc.Kind, tc.Kafka = adapters.KindKafka, &adapters.KafkaConfig{}
	}
	if tc.AMQP != nil && brokerURL != "" {
		tc.AMQP.URL = brokerURL
	}
	if p.Concurrency > 0 {
		tc.Concurrency = p.Concurrency
	}
	return tc
}

// openTransport builds the transport (for kafka, on an in-process
// Kafka-protocol cluster); the returned func closes everything.
func openTransport(ctx context.Context, tc adapters.TransportConfig, logger watermill.LoggerAdapter) (*adapters.Transport, func(), error) {
	var cluster *kfake.Cluster
	if tc.Kind == adapters.KindKafka {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(max(tc.Concurrency, 1)))
		if err != nil {
			return nil, nil, fmt.Errorf("levee/chaos: starting the in-process Kafka cluster: %w", err)
		}
		cluster = c
		tc.Kafka = &adapters.KafkaConfig{Brokers: c.ListenAddrs()}
	}
	tr, err := adapters.Build(ctx, tc, logger)
	if err != nil {
		if cluster != nil {
			cluster.Close()
		}
		return nil, nil, err
	}
	return tr, func() {
		_ = tr.Close()
		if cluster != nil {
			cluster.Close()
		}
	}, nil
}

// storeConfig is the plan's DLQ store on loopback; prefix isolates the run
// (the Redis key prefix, the PostgreSQL schema); url overrides the server
// (a private one).
func storeConfig(p *Plan, prefix, url string) dlqops.StoreConfig {
	switch p.Store {
	case dlqops.StoreKindRedis:
		if url == "" {
			url = loopbackRedis
		}
		return dlqops.StoreConfig{Kind: dlqops.StoreKindRedis, URL: url, Prefix: prefix}
	case dlqops.StoreKindPostgres:
		if url == "" {
			url = loopbackPostgres
		}
		return dlqops.StoreConfig{Kind: dlqops.StoreKindPostgres, URL: url, Schema: prefix}
	}
	return dlqops.StoreConfig{Kind: dlqops.StoreKindMemory}
}
