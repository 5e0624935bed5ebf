package adapters

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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

	jsCfg := wnats.JetStreamConfig{
		AutoProvision: true,
		SubscribeOptions: []nc.SubOpt{
			nc.DeliverAll(),
			nc.AckExplicit(),
			nc.ManualAck(),
			nc.AckWait(ackWait),
			nc.MaxAckPending(max(n, 1)),
		},
		DurablePrefix: group,
	}
	acks := &natsAcks{ackWait: ackWait, closing: make(chan struct{})}
	pub, err := wnats.NewPublisherWithNatsConn(pubConn, wnats.PublisherPublishConfig{
		Marshaler:         &wnats.NATSMarshaler{},
		SubjectCalculator: wnats.DefaultSubjectCalculator,
		JetStream:         jsCfg,
	}, o.logger)
	if err != nil {
		closeConns()
		return nil, fmt.Errorf("nats at %s: publisher: %w", addr, err)
	}
	sub, err := wnats.NewSubscriberWithNatsConn(subConn, wnats.SubscriberSubscriptionConfig{
		Unmarshaler:       natsUnmarshaler{acks: acks},
		SubjectCalculator: wnats.DefaultSubjectCalculator,
		SubscribersCount:  n,
		AckWaitTimeout:    ackWait,
		CloseTimeout:      ackWait,
		SubscribeTimeout:  tc.dialTimeout(),
		QueueGroupPrefix:  group,
		JetStream:         jsCfg,
	}, o.logger)
	if err != nil {
		_ = pub.Close()
		closeConns()
		return nil, fmt.Errorf("nats at %s: subscriber: %w", addr, err)
	}
	subJS, err := subConn.JetStream()
	if err != nil {
		_ = pub.Close()
		_ = sub.Close()
		closeConns()
		return nil, fmt.Errorf("nats at %s: JetStream: %w", addr, err)
	}
	return &built{
		pub:     pub,
		sub:     natsSubscriber{Subscriber: sub, js: subJS, group: group, ackWait: ackWait, maxAckPending: max(n, 1)},
		caps:    o.tc.Capabilities(),
		closers: []func() error{acks.close, func() error { closeConns(); return nil }},
	}, nil
}

// natsSubscriber creates the durable consumer itself before watermill-nats
// subscribes: nats.go deletes a durable consumer it created when that
// subscription unsubscribes (at Close), and a restart would then replay the
// whole stream; a consumer nats.go only binds to survives.
type natsSubscriber struct {
	*wnats.Subscriber
	js            nc.JetStreamManager
	group         string
	ackWait       time.Duration
	maxAckPending int
}

func (s natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.Subscriber.SubscribeInitialize(topic); err != nil {
		return nil, err
	}
	if _, err := s.js.ConsumerInfo(topic, s.group); err != nil {
		_, err = s.js.AddConsumer(topic, &nc.ConsumerConfig{
			Durable:        s.group,
			DeliverSubject: nc.NewInbox(),
			DeliverGroup:   s.group,
			DeliverPolicy:  nc.DeliverAllPolicy,
			AckPolicy:      nc.AckExplicitPolicy,
			AckWait:        s.ackWait,
			MaxAckPending:  s.maxAckPending,
			FilterSubject:  topic,
		})
		if err != nil && !errors.Is(err, nc.ErrConsumerNameAlreadyInUse) {
			return nil, fmt.Errorf("nats: create durable consumer %q on stream %q: %w", s.group, topic, err)
		}
	}
	return s.Subscriber.Subscribe(ctx, topic)
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

// natsAcks settles JetStream messages on Levee's side, so a Nack can carry
// a per-message delay (NakWithDelay), which watermill-nats cannot: its
// NakDelay only sees the delivery number.
type natsAcks struct {
	ackWait time.Duration
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func (a *natsAcks) close() error {
	a.once.Do(func() { close(a.closing) })
	a.wg.Wait()
	return nil
}

// settle waits for the handler's verdict on msg and answers JetStream on
// raw: Ack → AckSync; Nack → NakWithDelay(levee_retry_after) or Nak. When
// neither comes within the ack wait, or the transport closes, nothing is
// sent and JetStream redelivers after AckWait (at-least-once).
func (a *natsAcks) settle(raw *nc.Msg, msg *message.Message) {
	defer a.wg.Done()
	t := time.NewTimer(a.ackWait)
	defer t.Stop()
	select {
	case <-msg.Acked():
		_ = raw.AckSync()
	case <-msg.Nacked():
		if d := retryAfterOf(msg); d > 0 {
			_ = raw.NakWithDelay(d)
		} else {
			_ = raw.Nak()
		}
	case <-t.C:
	case <-a.closing:
	}
}

// natsUnmarshaler decodes like wnats.NATSMarshaler, adds
// levee_delivery_count from the JetStream metadata and takes over the
// acknowledgement: it clears the reply subject on the message watermill-nats
// holds (which makes watermill-nats skip its own Ack/Nak) and settles a copy.
type natsUnmarshaler struct {
	acks *natsAcks
}

func (u natsUnmarshaler) Unmarshal(m *nc.Msg) (*message.Message, error) {
	msg, err := (&wnats.NATSMarshaler{}).Unmarshal(m)
	if err != nil || m.Reply == "" {
		return msg, err
	}
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(MetadataDeliveryCount, strconv.FormatUint(md.NumDelivered, 10))
	}
	select {
	case <-u.acks.closing:
		// Closing: leave the message to watermill-nats, which discards it
		// unacknowledged (redelivered after AckWait).
		return msg, nil
	default:
	}
	raw := &nc.Msg{Subject: m.Subject, Reply: m.Reply, Header: m.Header, Data: m.Data, Sub: m.Sub}
	m.Reply = ""
	u.acks.wg.Add(1)
	go u.acks.settle(raw, msg)
	return msg, nil
}
