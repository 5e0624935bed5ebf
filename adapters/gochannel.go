package adapters

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// A GoChannel subscription hands over every published message at once (one
// goroutine per message), so in-flight is unbounded; and every subscription
// gets every message (fan-out), so competing consumers do not exist. The
// transport subscribes once per topic and caps the in-flight messages at
// the concurrency with NewLimiter.

func buildGoChannel(o *options) (*built, error) {
	n := o.tc.concurrency()
	persistent := o.tc.GoChannel != nil && o.tc.GoChannel.Persistent
	gc := gochannel.NewGoChannel(gochannel.Config{Persistent: persistent}, o.logger)
	sub, err := NewLimiter(gc, n)
	if err != nil {
		return nil, err
	}
	return &built{
		pub:  goChannelPublisher{gc},
		sub:  sub,
		caps: o.tc.Capabilities(),
	}, nil
}

// goChannelPublisher leaves closing the GoChannel to the subscriber side
// (FanIn closes it), so closing the publisher first does not stop consumption.
type goChannelPublisher struct{ gc *gochannel.GoChannel }

func (p goChannelPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.gc.Publish(topic, msgs...)
}

func (p goChannelPublisher) Close() error { return nil }
