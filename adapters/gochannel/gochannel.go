// Package gochannel is Levee's in-process transport: Watermill's GoChannel
// with the in-flight messages per topic capped at the concurrency. It is
// the default of the adapters facade (`transport: {kind: gochannel}`) and
// needs no broker.
//
// A GoChannel subscription hands over every published message at once (one
// goroutine per message), so in-flight is unbounded; and every subscription
// gets every message (fan-out), so competing consumers do not exist. The
// transport subscribes once per topic and caps the in-flight messages at
// the concurrency with a limiter.
//
// The publisher and the subscriber New returns are safe for concurrent use.
package gochannel

import (
	"github.com/ThreeDotsLabs/watermill/message"
	wgochannel "github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/adapters/internal/fanin"
	"github.com/levee-dev/levee/adapters/transport"
)

// Kind is the transport kind in the `transport` section.
const Kind = "gochannel"

// Config is the `transport.gochannel` section (in-process, no broker).
type Config struct {
	// Persistent keeps every published message in memory and replays them
	// to each new subscription (Watermill's GoChannel Persistent). Default
	// false: a message published with no subscriber is dropped by GoChannel.
	Persistent bool `yaml:"persistent"`
}

// Validate checks the section: every value is valid.
func (c Config) Validate(transport.Settings) error { return nil }

// Capabilities returns what the transport does with settings s: at most
// the concurrency in flight, no deadline, no native delay or priority.
func (c Config) Capabilities(s transport.Settings) transport.Capabilities {
	return transport.Capabilities{Kind: Kind, System: "gochannel", MaxInFlight: s.WithDefaults().Concurrency}
}

// New returns an in-process transport. It never fails for a valid
// concurrency.
func New(c Config, s transport.Settings) (*transport.Parts, error) {
	s = s.WithDefaults()
	gc := wgochannel.NewGoChannel(wgochannel.Config{Persistent: c.Persistent}, s.Logger)
	sub, err := fanin.NewLimiter(gc, s.Concurrency)
	if err != nil {
		return nil, err
	}
	return &transport.Parts{
		Publisher:    publisher{gc},
		Subscriber:   sub,
		Capabilities: c.Capabilities(s),
	}, nil
}

// publisher leaves closing the GoChannel to the subscriber side (the
// limiter closes it), so closing the publisher first does not stop
// consumption.
type publisher struct{ gc *wgochannel.GoChannel }

func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	return p.gc.Publish(topic, msgs...)
}

func (p publisher) Close() error { return nil }
