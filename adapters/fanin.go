package adapters

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/internal/fanin"
)

// FanIn is a message.Subscriber that subscribes every one of its underlying
// subscriptions to a topic and merges their outputs into one channel, so at
// most Width() messages are in flight at once: each forwarder hands over
// one message and waits for its Ack or Nack before taking the next.
//
// Passing the same subscriber several times makes several subscriptions of
// it (several AMQP consumers on the queue, several SQL pollers); passing
// distinct subscribers makes distinct consumers (Redis consumer-group
// members). Messages are forwarded as they are, so Ack and Nack reach the
// transport unchanged and at-least-once delivery is kept: a message that
// cannot be handed over (subscription context done, FanIn closed) is
// Nacked, never dropped.
//
// FanIn is also Levee's trust boundary for the transports it serves: it
// strips the control keys Levee acts on (levee_delivery_count,
// levee_retry_after, levee_redeliver_at) from every message before handing
// it over, so a producer cannot steer a consumer through them.
//
// FanIn is safe for concurrent use; Close is idempotent.
type FanIn = fanin.FanIn

// NewFanIn returns a FanIn over subs. It needs at least one subscriber.
func NewFanIn(subs ...message.Subscriber) (*FanIn, error) { return fanin.New(subs...) }

// NewLimiter returns a FanIn that subscribes sub once per topic and hands
// over at most n messages at a time from it: n forwarders share the one
// subscription, each waiting for its message's Ack or Nack before taking
// the next. Use it for subscribers that otherwise hand over without bound
// (GoChannel) or one per partition (Kafka). n must be at least 1.
func NewLimiter(sub message.Subscriber, n int) (*FanIn, error) { return fanin.NewLimiter(sub, n) }
