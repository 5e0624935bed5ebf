//go:build integration

package adapters_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/internal/brokertest"
)

// Integration tests against the real servers on loopback (see
// docs/TRANSPORTS.md for the command). Addresses come from
// internal/brokertest (LEVEE_TEST_AMQP_URL, LEVEE_TEST_NATS_URL,
// LEVEE_TEST_REDIS_ADDR, LEVEE_TEST_POSTGRES_URL override them). Kafka runs
// in process (kfake).

var (
	amqpURL     = brokertest.AMQPURL()
	natsURL     = brokertest.NATSURL()
	redisAddr   = brokertest.RedisAddr()
	postgresURL = brokertest.PostgresURL()
)

type transportCase struct {
	name string
	opts func() []adapters.Option
	// group is the consumer group the plain constructor uses ("" = none).
	group    string
	features tests.Features
	// cg reports whether the consumer-group constructor is supported.
	cg bool
	// brokers are the Kafka case's in-process brokers (a child process
	// this test binary starts reaches them through envKafkaBrokers).
	brokers []string
}

// envKafkaBrokers, when set, is the comma-separated addresses of the
// parent test process's kfake cluster: a child consumer (a SIGKILL test)
// uses it instead of starting a cluster of its own, which the parent
// could not see.
const envKafkaBrokers = "LEVEE_TEST_KAFKA_BROKERS"

func kafkaCluster(t *testing.T) []string {
	t.Helper()
	if v := os.Getenv(envKafkaBrokers); v != "" {
		return strings.Split(v, ",")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func transportCases(t *testing.T) []transportCase {
	brokers := kafkaCluster(t)
	run := watermill.NewShortUUID()
	return []transportCase{
		{
			name: "gochannel",
			opts: func() []adapters.Option { return []adapters.Option{adapters.WithGoChannelPersistent(true)} },
			features: tests.Features{
				ExactlyOnceDelivery:   true,
				Persistent:            false,
				RequireSingleInstance: true,
			},
		},
		{
			name: "amqp",
			opts: func() []adapters.Option { return []adapters.Option{adapters.WithAMQP(amqpURL)} },
			features: tests.Features{
				ConsumerGroups:        true,
				Persistent:            true,
				RestartServiceCommand: strings.Fields(os.Getenv("LEVEE_TEST_AMQP_RESTART")),
			},
			cg: true,
		},
		{
			name:    "kafka",
			opts:    func() []adapters.Option { return []adapters.Option{adapters.WithKafka(brokers...)} },
			brokers: brokers,
			group:   "conformance-" + run,
			features: tests.Features{
				ConsumerGroups: true,
				Persistent:     true,
			},
			cg: true,
		},
		{
			name: "nats",
			// Messages a cancelled subscription held unacknowledged come back
			// after AckWait; 5s keeps the suite's 15s timeouts.
			opts: func() []adapters.Option {
				return []adapters.Option{adapters.WithNATS(natsURL), adapters.WithAckDeadline(5 * time.Second)}
			},
			group: "conformance-" + run,
			features: tests.Features{
				ConsumerGroups:        true,
				Persistent:            true,
				RestartServiceCommand: strings.Fields(os.Getenv("LEVEE_TEST_NATS_RESTART")),
			},
			cg: true,
		},
		{
			name: "redis",
			// Messages a closed consumer left pending are claimed by another
			// group member after the ack deadline; 5s keeps the suite's
			// 15s timeouts (watermill-redisstream's own suite uses 5s too).
			opts: func() []adapters.Option {
				return []adapters.Option{adapters.WithRedis(redisAddr), adapters.WithAckDeadline(5 * time.Second)}
			},
			group: "conformance-" + run,
			features: tests.Features{
				ConsumerGroups: true,
				Persistent:     true,
			},
			cg: true,
		},
		{
			name: "postgres",
			opts: func() []adapters.Option {
				// Every in-flight message holds a connection. 24 for
				// the subscriber per transport keeps the suite under
				// PostgreSQL's default max_connections (100) with
				// -parallel 1 (.ci/run): TestConcurrentSubscribe opens
				// 11 transports, and peaks at about 70 connections.
				// The publisher keeps postgres.PublishConns of
				// max_conns for itself (opened as it needs them): with
				// 24 in all the subscriber had 20, every one held by a
				// row of TestConcurrentSubscribeMultipleTopics' 10
				// topics, and the next topic's schema waited for one
				// until its 60 s timeout (1 CI run).
				return []adapters.Option{adapters.WithPostgres(postgresURL), adapters.WithPostgresPollInterval(10 * time.Millisecond),
					adapters.WithPostgresMaxConns(24 + postgres.PublishConns)}
			},
			features: tests.Features{
				Persistent: true,
			},
		},
	}
}

const conformanceConcurrency = 4

func newTransport(t *testing.T, tc transportCase, group string, extra ...adapters.Option) *adapters.Transport {
	t.Helper()
	opts := append(tc.opts(), extra...)
	if group != "" {
		opts = append(opts, adapters.WithConsumerGroup(group))
	}
	tr, err := adapters.New(context.Background(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// TestConformance runs Watermill's own pub/sub suite over every transport
// with concurrency 4.
func TestConformance(t *testing.T) {
	for _, tc := range transportCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
				tr := newTransport(t, tc, tc.group, adapters.WithConcurrency(conformanceConcurrency))
				return tr.Publisher, tr.Subscriber
			}
			var cgConstructor tests.ConsumerGroupPubSubConstructor
			if tc.cg {
				cgConstructor = func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
					tr := newTransport(t, tc, group, adapters.WithConcurrency(conformanceConcurrency))
					return tr.Publisher, tr.Subscriber
				}
			}
			tests.TestPubSub(t, tc.features, constructor, cgConstructor)
		})
	}
}

// TestInFlight checks that concurrency N gives exactly N unacknowledged
// messages in flight per topic on every transport, and logs the figure.
//
// The transports run at the same time (each spends its time waiting for
// quiet periods), their three windows one after the other (PostgreSQL's
// connections stay under the server's 100).
func TestInFlight(t *testing.T) {
	cases := transportCases(t)
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) {
		tc := cases[i]
		for _, n := range []int{1, 8, 32} {
			t.Run(fmt.Sprintf("concurrency=%d", n), func(t *testing.T) {
				group := tc.group
				if group != "" {
					group = "inflight-" + watermill.NewShortUUID()
				}
				extra := []adapters.Option{adapters.WithConcurrency(n)}
				if tc.name == "postgres" {
					extra = append(extra, adapters.WithPostgresMaxConns(n+8))
				}
				tr := newTransport(t, tc, group, extra...)
				topic := "inflight_" + strings.ToLower(watermill.NewShortUUID())
				// Each round fills the in-flight window and waits a quiet
				// period; two rounds (the window, then its refill after the
				// acks) show the bound, four in a full run.
				rounds := 4
				if testing.Short() {
					rounds = 2
				}
				got := measureInFlight(t, tr, topic, rounds*n)
				t.Logf("%s: concurrency %d: max in flight %d (Capabilities.MaxInFlight %d)", tc.name, n, got, tr.Capabilities.MaxInFlight)
				require.Equal(t, tr.Capabilities.MaxInFlight, got, "max in flight")
			})
		}
	})
}

func measureInFlight(t *testing.T, tr *adapters.Transport, topic string, total int) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if si, ok := tr.Subscriber.(message.SubscribeInitializer); ok {
		require.NoError(t, si.SubscribeInitialize(topic))
	}
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	for i := 0; i < total; i++ {
		msg := message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
		require.NoError(t, tr.Publisher.Publish(topic, msg))
	}
	var held []*message.Message
	maxInFlight := 0
	acked := 0
	deadline := time.After(60 * time.Second)
	for acked < total {
		// Take everything the transport hands over without acking, until
		// it stops for a quiet period: that is the in-flight maximum.
		quiet := time.NewTimer(750 * time.Millisecond)
	collect:
		for {
			select {
			case msg := <-ch:
				held = append(held, msg)
				if !quiet.Stop() {
					<-quiet.C
				}
				quiet.Reset(750 * time.Millisecond)
			case <-quiet.C:
				break collect
			case <-deadline:
				t.Fatalf("timed out: %d of %d acked", acked, total)
			}
		}
		maxInFlight = max(maxInFlight, len(held))
		if len(held) == 0 {
			t.Fatalf("nothing delivered: %d of %d acked", acked, total)
		}
		for _, m := range held {
			m.Ack()
			acked++
		}
		held = held[:0]
	}
	return maxInFlight
}

type retryAfterErr struct{ d time.Duration }

func (e retryAfterErr) Error() string             { return "retry later" }
func (e retryAfterErr) RetryAfter() time.Duration { return e.d }

// TestNATSNakWithDelay checks that a handler error with RetryAfter() makes
// JetStream redeliver after that delay, with the delivery count.
func TestNATSNakWithDelay(t *testing.T) {
	tc := transportCases(t)[3]
	tr := newTransport(t, tc, "delay-"+watermill.NewShortUUID())
	require.True(t, tr.Capabilities.NativeDelay)
	topic := "delay_" + strings.ToLower(watermill.NewShortUUID())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))))

	handler := tr.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		return nil, retryAfterErr{d: 1500 * time.Millisecond}
	})
	first := <-ch
	require.Equal(t, "1", first.Metadata.Get(adapters.MetadataDeliveryCount))
	_, herr := handler(first)
	require.Error(t, herr)
	nacked := time.Now()
	first.Nack()
	select {
	case second := <-ch:
		waited := time.Since(nacked)
		t.Logf("redelivered after %s", waited)
		require.GreaterOrEqual(t, waited, 1400*time.Millisecond)
		require.Equal(t, "2", second.Metadata.Get(adapters.MetadataDeliveryCount))
		second.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("not redelivered")
	}
}

// TestAMQPPriority checks that levee_priority orders delivery in RabbitMQ.
func TestAMQPPriority(t *testing.T) {
	tc := transportCases(t)[1]
	tr := newTransport(t, tc, "", adapters.WithAMQPMaxPriority(10))
	require.True(t, tr.Capabilities.NativePriority)
	topic := "prio_" + strings.ToLower(watermill.NewShortUUID())
	require.NoError(t, tr.Subscriber.(message.SubscribeInitializer).SubscribeInitialize(topic))
	for i, p := range []string{"1", "1", "1", "9", "garbage", "5"} {
		msg := message.NewMessage(strconv.Itoa(i), nil)
		msg.Metadata.Set(adapters.MetadataPriority, p)
		require.NoError(t, tr.Publisher.Publish(topic, msg))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	var got []string
	for range 6 {
		msg := <-ch
		got = append(got, msg.Metadata.Get(adapters.MetadataPriority))
		msg.Ack()
	}
	require.Equal(t, []string{"9", "5", "1", "1", "1", "garbage"}, got)
}

// TestAMQPPreconditionFailed checks the error when a queue exists with
// other arguments.
func TestAMQPPreconditionFailed(t *testing.T) {
	tc := transportCases(t)[1]
	topic := "precond_" + strings.ToLower(watermill.NewShortUUID())
	plain := newTransport(t, tc, "", adapters.WithAMQPMaxPriority(0))
	require.NoError(t, plain.Subscriber.(message.SubscribeInitializer).SubscribeInitialize(topic))

	prio := newTransport(t, tc, "", adapters.WithAMQPMaxPriority(10))
	_, err := prio.Subscriber.Subscribe(context.Background(), topic)
	require.ErrorIs(t, err, adapters.ErrTopologyMismatch)
	t.Log(err)
	require.Contains(t, err.Error(), "x-max-priority")
}

// TestAMQPWrongCredentials checks the error for refused credentials.
func TestAMQPWrongCredentials(t *testing.T) {
	start := time.Now()
	_, err := adapters.New(context.Background(), adapters.WithAMQP("amqp://guest:wrong@127.0.0.1:5672/"))
	require.ErrorIs(t, err, adapters.ErrAuth)
	t.Log(err, time.Since(start))
}

// TestRefusedCredentials checks ErrAuth (and a clear message) on the
// transports whose loopback servers can refuse a login.
func TestRefusedCredentials(t *testing.T) {
	cases := []struct {
		name string
		opts []adapters.Option
		want error
	}{
		{"amqp wrong password", []adapters.Option{adapters.WithAMQP("amqp://guest:wrong@127.0.0.1:5672/")}, adapters.ErrAuth},
		{"amqp unknown vhost", []adapters.Option{adapters.WithAMQP("amqp://guest:guest@127.0.0.1:5672/nosuchvhost")}, adapters.ErrAuth},
		{"redis unknown user", []adapters.Option{adapters.WithRedis(redisAddr), adapters.WithRedisAuth("nosuchuser", "secret")}, adapters.ErrAuth},
		{"postgres unknown role", []adapters.Option{adapters.WithPostgres("postgres://nosuchrole@127.0.0.1:5432/test?sslmode=disable")}, adapters.ErrAuth},
		{"postgres unknown database", []adapters.Option{adapters.WithPostgres("postgres://postgres@127.0.0.1:5432/nosuchdb?sslmode=disable")}, adapters.ErrInvalidConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := adapters.New(context.Background(), tc.opts...)
			require.ErrorIs(t, err, tc.want)
			require.Less(t, time.Since(start), 5*time.Second)
			t.Log(err)
		})
	}
}

// TestDeliveryCountQuorum checks levee_delivery_count on RabbitMQ quorum queues.
func TestDeliveryCountQuorum(t *testing.T) {
	tc := transportCases(t)[1]
	tr := newTransport(t, tc, "", adapters.WithAMQPMaxPriority(0), adapters.WithAMQPQueueType("quorum"))
	require.True(t, tr.Capabilities.DeliveryCount)
	topic := "quorum_" + strings.ToLower(watermill.NewShortUUID())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), nil)))
	for want := 1; want <= 3; want++ {
		msg := <-ch
		require.Equal(t, strconv.Itoa(want), msg.Metadata.Get(adapters.MetadataDeliveryCount))
		if want < 3 {
			msg.Nack()
		} else {
			msg.Ack()
		}
	}
}

// TestKafkaPerKeyOrder checks that with concurrency 8 messages sharing
// levee_partition_key are still handled in publish order.
func TestKafkaPerKeyOrder(t *testing.T) {
	tc := transportCases(t)[2]
	tr := newTransport(t, tc, "order-"+watermill.NewShortUUID(), adapters.WithConcurrency(8))
	require.True(t, tr.Capabilities.OrderedPerKey)
	topic := "order_" + strings.ToLower(watermill.NewShortUUID())
	const keys, perKey = 6, 20
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			msg := message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
			msg.Metadata.Set(adapters.MetadataPartitionKey, "key-"+strconv.Itoa(k))
			require.NoError(t, tr.Publisher.Publish(topic, msg))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	type seen struct {
		key string
		seq int
	}
	results := make(chan seen, keys*perKey)
	for n := 0; n < keys*perKey; n++ {
		select {
		case msg := <-ch:
			go func() {
				// Vary the handling time so concurrency would reorder
				// anything not ordered by the transport.
				seq, _ := strconv.Atoi(string(msg.Payload))
				time.Sleep(time.Duration(seq%3) * time.Millisecond)
				results <- seen{msg.Metadata.Get(adapters.MetadataPartitionKey), seq}
				msg.Ack()
			}()
		case <-time.After(30 * time.Second):
			t.Fatalf("got %d of %d", n, keys*perKey)
		}
	}
	next := map[string]int{}
	for range keys * perKey {
		s := <-results
		require.Equal(t, next[s.key], s.seq, "key %s out of order", s.key)
		next[s.key]++
	}
}
