//go:build integration

package adapters_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/middleware"
)

// TestRedisNilMetadata: a stream entry whose metadata field is msgpack's
// nil (0xc0), as a producer that encodes an absent map writes it.
// watermill-redisstream decodes it to a nil metadata map, and the first
// deferral of the message (here its handler's levee.Defer, which the dlq
// Nacks with its delay) wrote levee_retry_after into that nil map in the
// transport's middleware, outside the stack's recover: the panic ended the
// router's process. Now the message is deferred and processed on its
// redelivery. (A stack with tracing hid it: the tracing middleware makes
// the map when it reads the trace context.)
func TestRedisNilMetadata(t *testing.T) {
	brokertest.SkipIfDown(t, redisAddr)
	tr := newTransport(t, transportCase{name: "redis", opts: func() []adapters.Option {
		return []adapters.Option{adapters.WithRedis(redisAddr)}
	}}, "nilmd-"+watermill.NewShortUUID())
	topic := scenarioTopic("nilmetadata")
	d, err := dlq.New(tr.Publisher)
	require.NoError(t, err)
	var (
		mu       sync.Mutex
		calls    int
		panicked []string
	)
	router := scenarioRouter(t)
	router.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc { // outermost: a panic fails the test
		return func(msg *message.Message) (out []*message.Message, err error) {
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					panicked = append(panicked, fmt.Sprint(p))
					mu.Unlock()
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			return h(msg)
		}
	})
	router.AddMiddleware(tr.Middleware)
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)
	router.AddConsumerHandler("nilmetadata", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(scenarioHandler(func(*message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return levee.Defer(100*time.Millisecond, nil) // no max hold: Nacked with the delay
		}
		return nil
	}))))
	scenarioRun(t, router)

	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer c.Close()
	require.NoError(t, c.XAdd(t.Context(), &redis.XAddArgs{Stream: topic, Values: map[string]any{
		"_watermill_message_uuid": watermill.NewUUID(), "payload": "order", "metadata": "\xc0",
	}}).Err())
	scenarioWait(t, "the entry processed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 2 || len(panicked) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, panicked, "panics outside the stack")
	require.Equal(t, 2, calls, "handler calls: the deferral, then the processing")
}
