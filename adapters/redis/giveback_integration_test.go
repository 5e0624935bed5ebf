//go:build integration

package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/redis"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestRedisCloseGivesBackHeldMessages: a member that closes while its
// handlers hold two messages (as Levee's stack does in an open breaker or
// a priority queue) ends their contexts and settles what the handlers
// then do: the Nacked one reaches the group's other, live member well
// before the ack deadline (30 s; before, it came back only then), once,
// and the one whose handler finished is acked, not run again.
func TestRedisCloseGivesBackHeldMessages(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ackDeadline = 30 * time.Second
	set := transport.Settings{Concurrency: 2, ConsumerGroup: "giveback-" + watermill.NewShortUUID(), AckDeadline: ackDeadline}
	topic := brokertest.Name("levee_giveback")
	first, err := redis.New(ctx, redis.Config{Addr: brokertest.RedisAddr()}, set)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	msgs, err := first.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"held", "finished"} {
		if err := first.Publisher.Publish(topic, message.NewMessage(id, []byte(id))); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case m := <-msgs:
			go func() { // held until its context ends, then Nacked or finished
				<-m.Context().Done()
				if m.UUID == "held" {
					m.Nack()
				} else {
					m.Ack()
				}
			}()
		case <-ctx.Done():
			t.Fatal("messages not received")
		}
	}
	// The other member runs before the first closes: it gets the
	// message by its periodic idle claim, as a live consumer would.
	second, err := redis.New(ctx, redis.Config{Addr: brokertest.RedisAddr()}, transport.Settings{Concurrency: 1, ConsumerGroup: set.ConsumerGroup, AckDeadline: ackDeadline})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	again, err := second.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed in %v", time.Since(start).Round(time.Millisecond))

	wait := time.NewTimer(ackDeadline / 2)
	defer wait.Stop()
	select {
	case m := <-again:
		m.Ack()
		if m.UUID != "held" {
			t.Fatalf("the second member got %q, want the Nacked message (the finished one was acked)", m.UUID)
		}
		t.Logf("the held message came back %v after the close began", time.Since(start).Round(time.Millisecond))
	case <-wait.C:
		t.Fatalf("the Nacked message did not reach the second member within %v (the ack deadline is %v)", ackDeadline/2, ackDeadline)
	}
	// Longer than the members' claim interval (5 s): nothing else is given
	// back, and the held message is not delivered twice.
	select {
	case m := <-again:
		t.Fatalf("the second member also got %q", m.UUID)
	case <-time.After(7 * time.Second):
	}
	// The finished message was acked by the closing member, the held one
	// by the second: nothing is left pending for the ack deadline's claim.
	c := goredis.NewClient(&goredis.Options{Addr: brokertest.RedisAddr()})
	defer c.Close()
	pending, err := c.XPending(ctx, topic, set.ConsumerGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pending.Count != 0 {
		t.Fatalf("%d entries still pending in the group, want 0 (the finished message was not acked)", pending.Count)
	}
}
