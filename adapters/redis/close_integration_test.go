//go:build integration

package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/levee-dev/levee/adapters/internal/kit"
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

// TestCloseEndsEveryHeldMessageAtOnce: a transport with concurrency 3
// whose three members each hold a message that its handler does not
// settle (it ignores its context past the 5 s grace) is closed. Every
// held message's context ends as the Close begins, and the Close returns
// after one grace. Before, the members were closed one after another,
// each waiting its grace for its message first: the second member's
// message was still live 5 s into the Close and the third's 10 s, so its
// waits went on during the shutdown (a priority slot the first one's
// message gave back went to the second's, and its handler ran), and the
// Close took three graces (with concurrency 8, 40 s: past a service
// router's 30 s close timeout).
func TestCloseEndsEveryHeldMessageAtOnce(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	const n = 3
	tr, err := redis.New(context.Background(), redis.Config{Addr: brokertest.RedisAddr()},
		transport.Settings{Concurrency: n, ConsumerGroup: "g" + watermill.NewShortUUID()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	topic := brokertest.Name("levee_close_all")
	defer func() { _ = tr.DeleteTopics(context.Background(), []string{topic}) }()
	msgs, err := tr.Subscriber.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	held := make([]*message.Message, 0, n) // one per member: a member holding one reads no other
	for range n {
		select {
		case m := <-msgs:
			held = append(held, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages received in 10 s", len(held), n)
		}
	}
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() { _ = tr.Subscriber.Close(); closed <- time.Since(start) }()
	live := time.After(kit.SettleGrace / 2)
	for i, m := range held {
		select {
		case <-m.Context().Done():
		case <-live:
			t.Errorf("held message %d of %d still live %v into the Close", i+1, n, time.Since(start).Round(time.Millisecond))
		}
	}
	if took := <-closed; took >= 2*kit.SettleGrace {
		t.Errorf("Close took %v with %d members each holding a message past the %v grace; want one grace", took.Round(time.Millisecond), n, kit.SettleGrace)
	}
}
