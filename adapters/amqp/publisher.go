package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/transport"
)

// publisher publishes with publisher confirms over an connection. It
// keeps up to poolSize confirm-mode channels (Publish calls beyond that
// wait for one); a channel that failed is closed, never reused, and
// channels of a lost connection are replaced by new ones on the next.
// Publish returns once RabbitMQ has confirmed every message (persisted it
// on a durable queue); an error means some may not have arrived, and a
// retry may duplicate the others. During a reconnect Publish waits up to
// the dial timeout for the connection, then fails with transport.ErrUnreachable.
//
// In queue mode (no consumer group) it declares the topic's queue before
// the first publish on each connection, as the consumer would, so messages
// published before any consumer subscribed are kept, not dropped as
// unroutable. It is safe for concurrent use.
type publisher struct {
	conn        *connection
	cfg         wamqp.Config
	timeout     time.Duration
	logger      watermill.LoggerAdapter
	maxPriority int
	quorum      bool

	slots   chan struct{}   // one token per channel in use
	stopCtx context.Context // cancelled by Close
	stop    context.CancelFunc
	closing <-chan struct{} // stopCtx.Done()

	mu       sync.Mutex
	idle     []pubChannel      // guarded by mu
	declared map[string]uint64 // topic → connection generation it was declared on; guarded by mu
	closed   bool              // guarded by mu
}

type pubChannel struct {
	ch  *amqp.Channel
	gen uint64
	// frameSize is the connection's negotiated frame_max (0: no limit).
	frameSize int
}

func newPublisher(conn *connection, cfg wamqp.Config, poolSize int, timeout time.Duration, logger watermill.LoggerAdapter, maxPrio int, quorum bool) *publisher {
	ctx, cancel := context.WithCancel(context.Background())
	return &publisher{
		conn: conn, cfg: cfg, timeout: timeout, logger: logger, maxPriority: maxPrio, quorum: quorum,
		slots:    make(chan struct{}, poolSize),
		stopCtx:  ctx,
		stop:     cancel,
		closing:  ctx.Done(),
		declared: map[string]uint64{},
	}
}

// Publish publishes msgs to topic and waits for the broker's confirms.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case p.slots <- struct{}{}:
	case <-p.closing:
		return transport.ErrClosed
	}
	defer func() { <-p.slots }()
	pc, err := p.channel()
	if err != nil {
		return err
	}
	if err := p.publish(pc, topic, msgs); err != nil {
		if errors.Is(err, levee.ErrTooLarge) { // refused before anything was sent
			p.release(pc)
			return err
		}
		_ = pc.ch.Close()
		return topologyError(topic, p.maxPriority, p.quorum, err)
	}
	p.release(pc)
	return nil
}

// channel takes an idle channel of the current connection or opens one.
func (p *publisher) channel() (pubChannel, error) {
	conn, gen, err := p.connection()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return pubChannel{}, fmt.Errorf("%w: amqp: not connected after %s (reconnecting)", transport.ErrUnreachable, p.timeout)
		}
		if errors.Is(err, context.Canceled) {
			return pubChannel{}, transport.ErrClosed
		}
		return pubChannel{}, err
	}
	var stale []pubChannel
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return pubChannel{}, transport.ErrClosed
	}
	for len(p.idle) > 0 {
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if pc.gen == gen && !pc.ch.IsClosed() {
			p.mu.Unlock()
			closeAll(stale)
			return pc, nil
		}
		stale = append(stale, pc)
	}
	p.mu.Unlock()
	closeAll(stale)
	ch, err := conn.Channel()
	if err != nil {
		return pubChannel{}, fmt.Errorf("levee/amqp: open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return pubChannel{}, fmt.Errorf("levee/amqp: confirm mode: %w", err)
	}
	return pubChannel{ch: ch, gen: gen, frameSize: conn.Config.FrameSize}, nil
}

// connection returns the open connection, waiting up to the dial timeout
// (or Close) while the transport reconnects.
func (p *publisher) connection() (*amqp.Connection, uint64, error) {
	if conn, gen, ok := p.conn.current(); ok {
		return conn, gen, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	stop := context.AfterFunc(p.stopCtx, cancel)
	defer stop()
	return p.conn.wait(ctx)
}

func closeAll(pcs []pubChannel) {
	for _, pc := range pcs {
		_ = pc.ch.Close()
	}
}

func (p *publisher) release(pc pubChannel) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = pc.ch.Close()
		return
	}
	p.idle = append(p.idle, pc)
	p.mu.Unlock()
}

// prepare declares what the topic needs once per connection: the exchange
// (consumer groups) or the queue (queue mode).
func (p *publisher) prepare(pc pubChannel, topic string) error {
	p.mu.Lock()
	gen, ok := p.declared[topic]
	p.mu.Unlock()
	if ok && gen == pc.gen {
		return nil
	}
	var err error
	if exchange := p.cfg.Exchange.GenerateName(topic); exchange != "" {
		err = p.cfg.TopologyBuilder.ExchangeDeclare(pc.ch, exchange, p.cfg)
	} else {
		err = p.cfg.TopologyBuilder.BuildTopology(pc.ch, wamqp.BuildTopologyParams{
			Topic:      topic,
			QueueName:  p.cfg.Queue.GenerateName(topic),
			RoutingKey: p.cfg.QueueBind.GenerateRoutingKey(topic),
		}, p.cfg, p.logger)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.declared[topic] = pc.gen
	p.mu.Unlock()
	return nil
}

// publish sends every message, then waits for all the confirms.
func (p *publisher) publish(pc pubChannel, topic string, msgs []*message.Message) error {
	if err := p.prepare(pc, topic); err != nil {
		return err
	}
	exchange := p.cfg.Exchange.GenerateName(topic)
	key := p.cfg.Publish.GenerateRoutingKey(topic)
	// Every message is marshalled and checked before the first is sent.
	var one [1]amqp.Publishing // a single message needs no allocation
	pubs := one[:min(len(msgs), 1)]
	if len(msgs) > 1 {
		pubs = make([]amqp.Publishing, len(msgs))
	}
	for i, msg := range msgs {
		pub, err := p.cfg.Marshaler.Marshal(msg)
		if err != nil {
			return fmt.Errorf("levee/amqp: marshal message %s: %w", msg.UUID, err)
		}
		if size, limit := headerFrameSize(pub), pc.frameSize-frameOverhead; pc.frameSize > 0 && size > limit {
			return &levee.TooLargeError{Size: int64(size), Limit: int64(limit), Err: errFrameTooLarge}
		}
		pubs[i] = pub
	}
	confirms := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, pub := range pubs {
		var err error
		confirms[i], err = pc.ch.PublishWithDeferredConfirm(exchange, key, p.cfg.Publish.Mandatory, p.cfg.Publish.Immediate, pub)
		if err != nil {
			return fmt.Errorf("levee/amqp: publish message %s: %w", msgs[i].UUID, err)
		}
	}
	for i, dc := range confirms {
		// A lost channel nacks every pending confirm, so this ends.
		select {
		case <-dc.Done():
		case <-p.closing:
			return transport.ErrClosed
		}
		if !dc.Acked() {
			return fmt.Errorf("levee/amqp: broker did not confirm message %s", msgs[i].UUID)
		}
	}
	return nil
}

// Close closes the idle channels; Publish calls after it return transport.ErrClosed.
// The connection is not closed.
func (p *publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.stop()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	closeAll(idle)
	return nil
}
