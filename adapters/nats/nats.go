// Package nats is Levee's NATS JetStream transport: watermill-nats v2's
// publisher and wire format, and a subscriber of Levee's own with N
// workers on one durable pull consumer per topic (exactly N in flight),
// the broker's delivery count as levee_delivery_count and native delayed
// redelivery (NakWithDelay) of a Nack carrying levee_retry_after. Topics
// map to stream names with '.' and other characters JetStream refuses
// replaced by '_'. Metadata keys and values NATS headers cannot carry
// (line breaks, leading or trailing blanks, keys that are not HTTP tokens)
// are sent base64url-encoded and decoded on receipt (header.go), so
// metadata round-trips byte for byte.
//
// The adapters facade builds it from `transport: {kind: nats, nats:
// {...}}`. The publisher and the subscriber New returns are safe for
// concurrent use; their Close is idempotent.
package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"

	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/redact"
)

// Kind is the transport kind in the `transport` section.
const Kind = "nats"

// Config is the `transport.nats` section (NATS JetStream, watermill-nats v2).
type Config struct {
	// URL is the server URL, e.g. nats://127.0.0.1:4222. Required.
	URL string `yaml:"url"`
}

// Validate checks the section. Errors wrap transport.ErrInvalidConfig and
// name the key (nats.url).
func (c Config) Validate(transport.Settings) error {
	if c.URL == "" {
		return kit.Invalid("nats.url", "kind nats needs a url (nats://host:4222)")
	}
	if err := kit.CheckURL(c.URL, "nats", "tls"); err != nil {
		return kit.Invalid("nats.url", "%v", err)
	}
	return nil
}

// Capabilities returns what the transport does with settings s: the ack
// deadline is JetStream's AckWait, delays are native, deliveries counted.
func (c Config) Capabilities(s transport.Settings) transport.Capabilities {
	s = s.WithDefaults()
	return transport.Capabilities{
		Kind:          Kind,
		System:        "nats",
		MaxInFlight:   s.Concurrency,
		AckDeadline:   s.AckDeadline,
		NativeDelay:   true,
		DeliveryCount: true,
	}
}

// New validates c, probes the server within the dial timeout, connects
// twice (publisher and subscriber) and checks that JetStream is enabled.
// Errors wrap transport.ErrInvalidConfig (also for a server without
// JetStream), ErrUnreachable (naming the address) or ErrAuth. New does not
// retry; once connected, the connections reconnect on their own.
func New(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	s = s.WithDefaults()
	if err := c.Validate(s); err != nil {
		return nil, err
	}
	p, err := build(ctx, c, s)
	return p, redact.Error(err, c.URL)
}

func build(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	url := c.URL
	addr := kit.HostPort(url, "4222")
	if err := kit.Probe(ctx, Kind, addr, s.DialTimeout); err != nil {
		return nil, err
	}
	n := s.Concurrency
	group := s.Group()
	ackWait := s.AckDeadline
	natsOpts := []nc.Option{
		nc.Name("levee"),
		nc.Timeout(s.DialTimeout),
		nc.MaxReconnects(-1),
		nc.ReconnectWait(time.Second),
	}
	pubConn, err := connect(url, addr, natsOpts)
	if err != nil {
		return nil, err
	}
	subConn, err := connect(url, addr, append(natsOpts[:len(natsOpts):len(natsOpts)], nc.SyncQueueLen(subQueueLen(n))))
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
			return nil, fmt.Errorf("%w: nats at %s: JetStream is not enabled (start nats-server with -js)", transport.ErrInvalidConfig, addr)
		}
		return nil, fmt.Errorf("levee/nats: JetStream at %s: %w", addr, err)
	}

	pub, err := wnats.NewPublisherWithNatsConn(pubConn, wnats.PublisherPublishConfig{
		Marshaler:         marshaler{},
		SubjectCalculator: wnats.DefaultSubjectCalculator,
		JetStream:         wnats.JetStreamConfig{AutoProvision: true},
	}, s.Logger)
	if err != nil {
		closeConns()
		return nil, fmt.Errorf("levee/nats: publisher at %s: %w", addr, err)
	}
	subJS, err := subConn.JetStream()
	if err != nil {
		_ = pub.Close()
		closeConns()
		return nil, fmt.Errorf("levee/nats: JetStream at %s: %w", addr, err)
	}
	sub := &pullSubscriber{
		conn:    subConn,
		js:      subJS,
		group:   group,
		ackWait: ackWait,
		workers: n,
		logger:  s.Logger,
		closing: make(chan struct{}),
	}
	return &transport.Parts{
		Publisher:    topicPublisher{pub, pubConn},
		Subscriber:   topicSubscriber{sub},
		Capabilities: c.Capabilities(s),
		Closers:      []func() error{func() error { closeConns(); return nil }},
		DeleteTopics: func(_ context.Context, topics []string) error {
			var errs []error
			for _, topic := range topics {
				// The stream holds the messages and the durable consumers.
				if err := js.DeleteStream(streamName(topic)); err != nil && !errors.Is(err, nc.ErrStreamNotFound) {
					errs = append(errs, fmt.Errorf("levee/nats: delete stream of %q: %w", topic, err))
				}
			}
			return errors.Join(errs...)
		},
	}, nil
}

// subQueueLen is the length of each subscription's queue between the
// connection and its workers at concurrency n (nats.go's default is
// 65,536 messages, 512 KiB, while each worker fetches one message at a
// time): minSubQueueLen, or 4 per worker when that is more. A worker holds one fetched message at a
// time; a message that finds the queue full is dropped by nats.go and
// redelivered by JetStream after ack_deadline.
func subQueueLen(n int) int { return max(minSubQueueLen, 4*n) }

// minSubQueueLen is the shortest queue subQueueLen gives.
const minSubQueueLen = 1024

func connect(url, addr string, opts []nc.Option) (*nc.Conn, error) {
	conn, err := nc.Connect(url, opts...)
	if err == nil {
		return conn, nil
	}
	if errors.Is(err, nc.ErrAuthorization) || errors.Is(err, nc.ErrAuthExpired) || errors.Is(err, nc.ErrAuthRevoked) {
		return nil, fmt.Errorf("%w: nats at %s: %v (check the credentials in transport.nats.url)", transport.ErrAuth, addr, err)
	}
	return nil, kit.Unreachable(Kind, addr, err)
}

// streamName maps a Watermill topic to a JetStream stream and subject
// name. A stream name may not contain '.', '*', '>', path separators or
// whitespace, and Levee's default dead-letter topic is "<topic>.dlq", so
// those characters become '_'. Publisher and subscriber map the same way,
// so "orders.dlq" published is "orders.dlq" consumed.
func streamName(topic string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', '/', '\\', ' ', '\t', '\n', '\r':
			return '_'
		}
		return r
	}, topic)
}

// topicPublisher maps topics to stream names, and a refusal for size to a
// *levee.TooLargeError with the sizes: the client's (each message against
// the max_payload of the server's INFO) or the stream's (its
// max_msg_size, which a stream Levee creates does not set).
type topicPublisher struct {
	message.Publisher
	conn *nc.Conn
}

func (p topicPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(streamName(topic), msgs...)
	if err == nil {
		return nil
	}
	if errors.Is(err, nc.ErrMaxPayload) {
		return tooLarge(err, p.conn.MaxPayload(), msgs)
	}
	var apiErr *nc.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeMessageTooLarge {
		return tooLarge(err, p.streamLimit(streamName(topic)), msgs)
	}
	return err
}

type topicSubscriber struct{ *pullSubscriber }

func (s topicSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.pullSubscriber.Subscribe(ctx, streamName(topic))
}

func (s topicSubscriber) SubscribeInitialize(topic string) error {
	return s.pullSubscriber.SubscribeInitialize(streamName(topic))
}
