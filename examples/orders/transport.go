package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// loopback are the defaults of -transport KIND: the servers of a
// developer machine (and of CI) on 127.0.0.1. Kafka runs in process.
func loopback(kind string) (adapters.TransportConfig, error) {
	tc := adapters.TransportConfig{Kind: kind}
	switch kind {
	case "nats", "redis", "postgres":
		tc.AckDeadline = 30 * time.Second // kinds with a redelivery deadline
	}
	switch kind {
	case "gochannel":
		tc.Concurrency = 256
	case "amqp":
		tc.Concurrency = 32
		prio := 10 // native priority for the VIP orders; new queues only
		tc.AMQP = &adapters.AMQPConfig{URL: "amqp://guest:guest@127.0.0.1:5672/", MaxPriority: &prio}
	case "kafka":
		tc.Concurrency = 16
		tc.Kafka = &adapters.KafkaConfig{} // brokers: the in-process cluster
	case "nats":
		tc.Concurrency = 32
		tc.NATS = &adapters.NATSConfig{URL: "nats://127.0.0.1:4222"}
	case "redis":
		tc.Concurrency = 32
		tc.Redis = &adapters.RedisConfig{Addr: "127.0.0.1:6379"}
	case "postgres":
		tc.Concurrency = 4 // a connection per message in flight, per topic
		tc.Postgres = &adapters.PostgresConfig{URL: "postgres://postgres@127.0.0.1:5432/test"}
	default:
		return tc, fmt.Errorf("-transport %q: want gochannel, amqp, kafka, nats, redis or postgres", kind)
	}
	return tc, nil
}

// transportConfig is the file's transport section, or the loopback
// defaults of -transport KIND when the flag is set.
func transportConfig(cfg *config.Config, flagKind string) (adapters.TransportConfig, error) {
	if flagKind != "" {
		return loopback(flagKind)
	}
	var tc adapters.TransportConfig
	err := cfg.Transport().Decode(&tc)
	if err != nil && tc.Kind != adapters.KindGoChannel && slices.Contains(adapters.Kinds(), tc.Kind) && noSection(tc) {
		// kind: ${LEVEE_TRANSPORT:-gochannel} set to a broker, which the
		// demo's file gives no address for.
		err = fmt.Errorf("%w (the file names no %s server: -transport %s runs on the loopback one, or add a transport.%s section)", err, tc.Kind, tc.Kind, tc.Kind)
	}
	return tc, err
}

// noSection reports whether tc has no per-transport sub-section.
func noSection(tc adapters.TransportConfig) bool {
	return tc.GoChannel == nil && tc.AMQP == nil && tc.Kafka == nil && tc.NATS == nil && tc.Redis == nil && tc.Postgres == nil
}

// storeConfig is the file's store section, or the loopback store of
// -store KIND when the flag is set (prefix: the Redis key prefix or the
// PostgreSQL schema).
func storeConfig(cfg *config.Config, flagKind, prefix string) (dlqops.StoreConfig, error) {
	var sc dlqops.StoreConfig
	switch flagKind {
	case "":
		if sc, ok := cfg.Store(); ok {
			return sc, nil
		}
	case dlqops.StoreKindMemory:
	case dlqops.StoreKindRedis:
		sc = dlqops.StoreConfig{Kind: flagKind, URL: "redis://127.0.0.1:6379/0", Prefix: prefix}
	case dlqops.StoreKindPostgres:
		sc = dlqops.StoreConfig{Kind: flagKind, URL: "postgres://postgres@127.0.0.1:5432/test", Schema: prefix}
	default:
		return sc, fmt.Errorf("-store %q: want memory, redis or postgres", flagKind)
	}
	return sc, sc.Validate()
}

// openTransport builds the transport; for Kafka without brokers it starts
// an in-process Kafka-protocol cluster first. The returned func closes
// both.
func openTransport(ctx context.Context, tc adapters.TransportConfig, logger watermill.LoggerAdapter) (*adapters.Transport, func(), error) {
	var cluster *kfake.Cluster
	if tc.Kind == "kafka" && (tc.Kafka == nil || len(tc.Kafka.Brokers) == 0) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(max(tc.Concurrency, 1)))
		if err != nil {
			return nil, nil, fmt.Errorf("starting the in-process Kafka cluster: %w", err)
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

// topicNames gives the run's topics. On a broker, topics (queues, streams,
// tables) outlive a run, so each run uses its own prefix and starts empty;
// schemas stay keyed by the plain names (see unprefix).
type topicNames struct{ prefix string }

func newTopicNames(kind string) topicNames {
	if kind == "" || kind == "gochannel" {
		return topicNames{}
	}
	return topicNames{prefix: "levee_demo_" + strings.ToLower(watermill.NewShortUUID()[:8]) + "_"}
}

func (t topicNames) of(topic string) string { return t.prefix + topic }

func (t topicNames) unprefix(topic string) string { return strings.TrimPrefix(topic, t.prefix) }

// removeTopics deletes the run's topics and their dead-letter topics from
// the broker (queues, streams, tables), unless -keep. The dead-letter
// store is not touched: `levee dlq` reads it after the run.
func (d *demo) removeTopics() {
	if d.o.keep || d.names.prefix == "" {
		return
	}
	var all []string
	for _, t := range d.topics.all() {
		all = append(all, t, t+".dlq")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.tr.DeleteTopics(ctx, all...); err != nil {
		fmt.Fprintf(d.out, "removing this run's topics: %v (remove those named %s* by hand)\n", err, d.names.prefix)
		return
	}
	fmt.Fprintf(d.out, "removed this run's %d topics from %s (-keep keeps them)\n", len(all), d.tr.Capabilities.Kind)
}
