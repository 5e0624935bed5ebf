//go:build integration

package chaos

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// A run on the shared servers (the user's broker and store) leaves nothing
// behind: its topics (RabbitMQ queues, JetStream streams) are deleted when
// it ends, and so are its dead letters and counts under its store prefix.
func TestChaosRunLeavesNothingOnSharedServers(t *testing.T) {
	for _, transport := range []string{"amqp", "nats"} {
		t.Run(transport, func(t *testing.T) {
			p, err := LoadPlan("plans/smoke.yaml")
			if err != nil {
				t.Fatal(err)
			}
			p.Transport, p.Store, p.Messages = transport, "redis", 300
			res := runPlanT(t, p)
			if res.RunID == "" {
				t.Fatal("the result names no run")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var left []string
			switch transport {
			case "amqp":
				left = amqpQueuesLeft(t, res.RunID)
			case "nats":
				left = natsStreamsLeft(ctx, t, res.RunID)
			}
			if len(left) > 0 {
				t.Errorf("run %s left on the broker: %v", res.RunID, left)
			}
			rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
			defer rc.Close()
			keys, err := rc.Keys(ctx, "levee_chaos_"+res.RunID+"*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 0 {
				t.Errorf("run %s left %d keys in Redis, e.g. %s", res.RunID, len(keys), keys[0])
			}
		})
	}
}

// amqpQueuesLeft returns the run's queues that still exist (a passive
// declare of a missing queue fails with 404 and closes the channel).
func amqpQueuesLeft(t *testing.T, runID string) []string {
	t.Helper()
	conn, err := amqp.Dial(loopbackAMQP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var left []string
	for _, q := range []string{"chaos_" + runID + "_in", "chaos_" + runID + "_batch", "chaos_" + runID + "_in.dlq", "chaos_" + runID + "_batch.dlq"} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
		var ae *amqp.Error
		switch {
		case err == nil:
			left = append(left, q)
			_ = ch.Close()
		case errors.As(err, &ae) && ae.Code == amqp.NotFound:
		default:
			t.Fatalf("passive declare of %s: %v", q, err)
		}
	}
	return left
}

// natsStreamsLeft returns the JetStream streams whose name holds the run
// ID.
func natsStreamsLeft(ctx context.Context, t *testing.T, runID string) []string {
	t.Helper()
	nc, err := nats.Connect(loopbackNATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.Context(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for name := range js.StreamNames(nats.Context(ctx)) {
		if strings.Contains(name, runID) {
			left = append(left, name)
		}
	}
	return left
}
