//go:build integration

package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// Two consumers of one topic over a broker share the transport's consumer
// group, so each would get only some of its messages (over Redis, AMQP,
// NATS and PostgreSQL about half each): Run refuses them, naming both.
// GoChannel gives each every message, so it takes them.
func TestTwoConsumersOfOneTopicFailRun(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	redis := fmt.Sprintf("transport: {kind: redis, redis: {addr: %q}}\n", brokertest.RedisAddr())
	for _, tc := range []struct {
		name, yaml string
		topics     [2]string // the topics of handlers a and b
		want       string
	}{
		{"two handlers over redis", redis, [2]string{"orders", "orders"},
			`handler "a" and handler "b" consume topic "orders": over redis they share the transport's consumer group`},
		{"a handler on the monitor's topic", redis + "store: {kind: memory}\nhandlers:\n  a:\n    dlq: {}\n", [2]string{"orders", "orders.dlq"},
			`the dead-letter monitor and handler "b" consume topic "orders.dlq": over redis they share the transport's consumer group (transport.consumer_group), so each would get only some of its messages; give each its own topic, or run each in a service of its own with a distinct transport.consumer_group, or set WatchDeadLetters to false`},
		{"two handlers over gochannel", "transport: {kind: gochannel}\n", [2]string{"orders", "orders"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := service.New(context.Background(), parse(t, tc.yaml), config.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			svc.Handle("a", tc.topics[0], func(*message.Message) error { return nil })
			svc.Handle("b", tc.topics[1], func(*message.Message) error { return nil })
			runRefused(t, svc, tc.want)
		})
	}
}

// Over PostgreSQL a topic longer than postgres.MaxTopicLen has no table of
// its own. A handler's topic may fit while its default dead-letter topic
// (".dlq" appended) does not: before, the service ran, and every dead
// letter was refused by the transport and the message redelivered without
// end. Run now refuses both at start, naming the file's line for the dlq.
func TestTopicTooLongForTheTransportFailsRun(t *testing.T) {
	brokertest.SkipIfDown(t, "127.0.0.1:5432")
	pg := fmt.Sprintf("transport: {kind: postgres, postgres: {url: %q}}\n", brokertest.PostgresURL())
	fits := strings.Repeat("o", postgres.MaxTopicLen-2) // its ".dlq" is 2 bytes too long
	long := strings.Repeat("o", postgres.MaxTopicLen+1)
	for _, tc := range []struct {
		name, yaml, topic, want string
	}{
		{"default dlq topic too long", pg + "handlers:\n  a:\n    dlq: {}\n", fits,
			`handlers.a.dlq.topic: handler "a" dead-letters to "` + fits + `.dlq", and every dead letter would be refused`},
		{"dlq topic too long", pg + "handlers:\n  a:\n    dlq: {topic: " + long + "}\n", "orders",
			`levee.yaml:4: handlers.a.dlq.topic: handler "a" dead-letters to "` + long + `", and every dead letter would be refused`},
		{"consumed topic too long", pg, long, `handler "a" consumes topic "` + long + `": levee/postgres: topic too long`},
		{"both fit", pg + "handlers:\n  a:\n    dlq: {topic: short.dlq}\n", fits, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := service.New(context.Background(), parse(t, tc.yaml), config.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			svc.Handle("a", tc.topic, func(*message.Message) error { return nil })
			runRefused(t, svc, tc.want)
		})
	}
}
