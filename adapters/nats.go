package adapters

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"
)

func buildNATS(ctx context.Context, o *options) (*built, error) {
	tc := o.tc
	url := tc.NATS.URL
	addr := hostPort(url, "4222")
	if err := probe(ctx, KindNATS, addr, tc.dialTimeout()); err != nil {
		return nil, err
	}
	n := tc.concurrency()
	group := tc.consumerGroup()
	ackWait := tc.ackDeadline()
	natsOpts := []nc.Option{
		nc.Name("levee"),
		nc.Timeout(tc.dialTimeout()),
		nc.MaxReconnects(-1),
		nc.ReconnectWait(time.Second),
	}
	pubConn, err := natsConnect(url, addr, natsOpts)
	if err != nil {
		return nil, err
	}
	subConn, err := natsConnect(url, addr, natsOpts)
	if err != nil {
		pubConn.Close()
		return nil, err
	}
	closeConns := func() { pubConn.Close(); subConn.Close() }

	js, err := pubConn.JetStream()
	if err == nil {
		_, err = js.AccountInfo()
	}
	if err != nil {
		closeConns()
		if errors.Is(err, nc.ErrJetStreamNotEnabled) || errors.Is(err, nc.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("%w: nats at %s: JetStream is not enabled (start nats-server with -js)", ErrInvalidConfig, addr)
		}
		return nil, fmt.Errorf("nats at %s: JetStream: %w", addr, err)
	}

	pub, err := wnats.NewPublisherWithNatsConn(pubConn, wnats.PublisherPublishConfig{
		Marshaler:         &wnats.NATSMarshaler{},
		SubjectCalculator: wnats.DefaultSubjectCalculator,
		JetStream:         wnats.JetStreamConfig{AutoProvision: true},
	}, o.logger)
	if err != nil {
		closeConns()
		return nil, fmt.Errorf("nats at %s: publisher: %w", addr, err)
	}
	subJS, err := subConn.JetStream()
	if err != nil {
		_ = pub.Close()
		closeConns()
		return nil, fmt.Errorf("nats at %s: JetStream: %w", addr, err)
	}
	sub := &natsPullSubscriber{
		conn:    subConn,
		js:      subJS,
		group:   group,
		ackWait: ackWait,
		workers: n,
		logger:  o.logger,
		closing: make(chan struct{}),
	}
	return &built{
		pub:     natsTopicPublisher{pub},
		sub:     natsTopicSubscriber{sub},
		caps:    o.tc.Capabilities(),
		closers: []func() error{func() error { closeConns(); return nil }},
	}, nil
}

func natsConnect(url, addr string, opts []nc.Option) (*nc.Conn, error) {
	conn, err := nc.Connect(url, opts...)
	if err == nil {
		return conn, nil
	}
	if errors.Is(err, nc.ErrAuthorization) || errors.Is(err, nc.ErrAuthExpired) || errors.Is(err, nc.ErrAuthRevoked) {
		return nil, fmt.Errorf("%w: nats at %s: %v (check the credentials in transport.nats.url)", ErrAuth, addr, err)
	}
	return nil, unreachable(KindNATS, addr, err)
}

// natsStreamName maps a Watermill topic to a JetStream stream and subject
// name. A stream name may not contain '.', '*', '>', path separators or
// whitespace, and Levee's default dead-letter topic is "<topic>.dlq", so
// those characters become '_'. Publisher and subscriber map the same way,
// so "orders.dlq" published is "orders.dlq" consumed.
func natsStreamName(topic string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', '/', '\\', ' ', '\t', '\n', '\r':
			return '_'
		}
		return r
	}, topic)
}

type natsTopicPublisher struct{ message.Publisher }

func (p natsTopicPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.Publisher.Publish(natsStreamName(topic), msgs...)
}

type natsTopicSubscriber struct{ *natsPullSubscriber }

func (s natsTopicSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.natsPullSubscriber.Subscribe(ctx, natsStreamName(topic))
}

func (s natsTopicSubscriber) SubscribeInitialize(topic string) error {
	return s.natsPullSubscriber.SubscribeInitialize(natsStreamName(topic))
}
