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

// TestRedeliveredMessageContextEndsWithSubscription: a message Nacked
// once (a deferral, a retry) comes again, and its context ends when the
// subscription does, as the first delivery's does, so the stack's waits
// end at a shutdown. watermill-redisstream re-sends a Nacked message as a
// copy without a context; the copy's never ended.
func TestRedeliveredMessageContextEndsWithSubscription(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	tr, err := redis.New(context.Background(), redis.Config{Addr: brokertest.RedisAddr()}, transport.Settings{ConsumerGroup: "g" + watermill.NewShortUUID()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	topic := brokertest.Name("levee_redeliver_ctx")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := tr.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))); err != nil {
		t.Fatal(err)
	}
	receive := func() *message.Message {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no message within 10 s")
			return nil
		}
	}
	receive().Nack()
	again := receive()
	cancel()
	select {
	case <-again.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the redelivered message's context did not end within 10 s of the subscription's end")
	}
	again.Nack()
}
