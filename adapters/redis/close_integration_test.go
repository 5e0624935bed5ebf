//go:build integration

package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/levee-dev/levee/adapters/redis"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestCloseLeavesNoGoroutine: a router started and closed at once over
// the Redis transport leaves no goroutine behind once the transport is
// closed. watermill-redisstream's reading goroutine slept 500 ms after the
// closed client's error before it looked for the end (goleak saw five
// per transport); it now stops on that error (readEnded).
func TestCloseLeavesNoGoroutine(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for range 5 {
		tr, err := redis.New(context.Background(), redis.Config{Addr: brokertest.RedisAddr()}, transport.Settings{Concurrency: 4, ConsumerGroup: "g" + watermill.NewShortUUID()})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
		r.AddConsumerHandler("h", brokertest.Name("levee_close"), tr.Subscriber, func(*message.Message) error { return nil })
		go func() { _ = r.Run(context.Background()) }()
		<-r.Running()
		_ = r.Close()
		_ = tr.Close()
	}
}
