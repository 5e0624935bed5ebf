//go:build integration

package redis

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestFirstSlotToCloseEndsEveryHeldMessage: two slots of one transport
// each hold a message; when the first slot's Close returns, the other
// slot's message's context has ended too, so no held message's wait goes
// on while another's ends (at a shutdown, a priority slot given back by
// one went to the other, and its handler ran). Before, each slot ended
// only its own members, from its own goroutine.
func TestFirstSlotToCloseEndsEveryHeldMessage(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	topic := brokertest.Name("levee_stop")
	newClient := func() *redis.Client { return redis.NewClient(&redis.Options{Addr: brokertest.RedisAddr()}) }
	admin := newClient()
	defer admin.Close()
	defer admin.Del(context.Background(), topic)
	stop := kit.NewStopper()
	group := "g" + watermill.NewShortUUID()
	slots := make([]*leaseSubscriber, 2)
	msgs := make([]<-chan *message.Message, len(slots))
	for i := range slots {
		slots[i] = newLeaseSubscriber(newClient, redisstream.SubscriberConfig{
			Consumer: "c" + watermill.NewShortUUID(), ConsumerGroup: group, DisableIndefiniteInitialBlock: true,
			Unmarshaller: unmarshaller{}, ShouldStopOnReadErrors: readEnded,
		}, 30*time.Second, stop, watermill.NopLogger{})
		defer slots[i].Close()
		ch, err := slots[i].Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = ch
	}
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: admin}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	for range slots {
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	held := make([]*message.Message, len(slots)) // one each: a member holding one reads no other
	for i, ch := range msgs {
		select {
		case held[i] = <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("slot %d got no message in 10 s", i)
		}
		go func() { <-held[i].Context().Done(); held[i].Nack() }() // handed back when it ends
	}
	if err := slots[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := held[1].Context().Err(); err == nil {
		t.Error("the other slot's held message is live after the first slot closed")
	}
}
