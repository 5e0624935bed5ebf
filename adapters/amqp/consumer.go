package amqp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
)

// consumer is a message.Subscriber over an connection. Each Subscribe
// runs one AMQP consumer (one channel, the configured prefetch) on the
// queue watermill-amqp's Config names for the topic, hands over one
// delivery at a time and settles it before taking the next. When the
// channel or the connection is lost it opens a new channel on the next
// connection, declares the topology again (a broker that lost a
// non-durable queue gets it back) and consumes on, until its context ends
// or Close. Deliveries left unsettled by a loss are requeued by RabbitMQ
// and delivered again: at-least-once, duplicates possible.
//
// Topology, consumer options and the wire format (Marshaler) come from the
// watermill-amqp Config, so it interoperates with watermill-amqp's own
// publishers and subscribers. It is safe for concurrent use.
type consumer struct {
	conn    *connection
	cfg     wamqp.Config
	timeout time.Duration // how long Subscribe waits for a connection
	logger  watermill.LoggerAdapter

	stopCtx context.Context // cancelled by Close
	stop    context.CancelFunc
	closing <-chan struct{} // stopCtx.Done()

	mu     sync.Mutex
	closed bool // guarded by mu
	wg     sync.WaitGroup
}

func newConsumer(conn *connection, cfg wamqp.Config, timeout time.Duration, logger watermill.LoggerAdapter) *consumer {
	ctx, cancel := context.WithCancel(context.Background())
	return &consumer{conn: conn, cfg: cfg, timeout: timeout, logger: logger, stopCtx: ctx, stop: cancel, closing: ctx.Done()}
}

func (s *consumer) params(topic string) wamqp.BuildTopologyParams {
	return wamqp.BuildTopologyParams{
		Topic:        topic,
		QueueName:    s.cfg.Queue.GenerateName(topic),
		ExchangeName: s.cfg.Exchange.GenerateName(topic),
		RoutingKey:   s.cfg.QueueBind.GenerateRoutingKey(topic),
	}
}

// connect waits for the connection, up to the dial timeout.
func (s *consumer) connect(ctx context.Context) (*amqp.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, _, err := s.conn.wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w: amqp: not connected after %s (reconnecting)", transport.ErrUnreachable, s.timeout)
	}
	return conn, err
}

func (s *consumer) declare(conn *amqp.Connection, p wamqp.BuildTopologyParams) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("levee/amqp: open channel: %w", err)
	}
	err = s.cfg.TopologyBuilder.BuildTopology(ch, p, s.cfg, s.logger)
	if cerr := ch.Close(); err == nil && cerr != nil && !errors.Is(cerr, amqp.ErrClosed) {
		err = cerr
	}
	return err
}

// SubscribeInitialize declares the topic's queue (and exchange and
// binding with a consumer group), so messages published before the first
// Subscribe are kept.
func (s *consumer) SubscribeInitialize(topic string) error {
	if s.isClosed() {
		return transport.ErrClosed
	}
	conn, err := s.connect(context.Background())
	if err != nil {
		return err
	}
	return s.declare(conn, s.params(topic))
}

func (s *consumer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Subscribe declares the topology (so a mismatch fails here, not in a
// retry loop) and starts consuming. The channel closes when ctx is done or
// the consumer is closed.
func (s *consumer) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, transport.ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()

	p := s.params(topic)
	conn, err := s.connect(ctx)
	if err == nil {
		err = s.declare(conn, p)
	}
	if err != nil {
		s.wg.Done()
		return nil, err
	}
	out := make(chan *message.Message)
	go s.run(ctx, p, out)
	return out, nil
}

// run consumes until ctx is done or Close, starting over on a new channel
// after each loss.
func (s *consumer) run(ctx context.Context, p wamqp.BuildTopologyParams, out chan<- *message.Message) {
	defer s.wg.Done()
	defer close(out)
	fields := watermill.LogFields{"topic": p.Topic, "amqp_queue_name": p.QueueName}
	delay := redialMin
	for first := true; ; first = false {
		consumed, err := s.consume(ctx, p, out, !first)
		if ctx.Err() != nil || s.isClosed() {
			return
		}
		if consumed {
			delay = redialMin
		}
		s.logger.Error("AMQP consumer stopped, starting it again", err, fields)
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.closing:
			t.Stop()
			return
		}
		delay = min(2*delay, redialMax)
	}
}

// errConsumerStopped is returned by consume when it ends for its context
// or Close.
var errConsumerStopped = errors.New("levee/amqp: consumer stopped")

// consume runs one consumer on one channel until the channel, the
// connection, ctx or the consumer ends. consumed reports that the consumer
// was registered, so run restarts it without waiting long.
func (s *consumer) consume(ctx context.Context, p wamqp.BuildTopologyParams, out chan<- *message.Message, redeclare bool) (consumed bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopCtx, cancel)
	conn, _, err := s.conn.wait(wctx)
	stop()
	cancel()
	if err != nil {
		return false, err
	}
	if redeclare {
		if err := s.declare(conn, p); err != nil {
			return false, err
		}
	}
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("levee/amqp: open channel: %w", err)
	}
	defer func() { _ = ch.Close() }()
	if q := s.cfg.Consume.Qos; q != (wamqp.QosConfig{}) {
		if err := ch.Qos(q.PrefetchCount, q.PrefetchSize, q.Global); err != nil {
			return false, fmt.Errorf("levee/amqp: set qos: %w", err)
		}
	}
	lost := ch.NotifyClose(make(chan *amqp.Error, 1))
	m := s.marshaler(conn)
	c := s.cfg.Consume
	deliveries, err := ch.Consume(p.QueueName, c.Consumer, false, c.Exclusive, c.NoLocal, c.NoWait, c.Arguments)
	if err != nil {
		return false, fmt.Errorf("levee/amqp: consume from queue %q: %w", p.QueueName, err)
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				// The channel closed; its error, if any, is in lost.
				select {
				case aerr := <-lost:
					if aerr != nil {
						return true, aerr
					}
				default:
				}
				return true, errors.New("levee/amqp: delivery channel closed")
			}
			if !s.deliver(ctx, m, d, out) {
				return true, errConsumerStopped
			}
		case aerr := <-lost:
			if aerr != nil {
				return true, aerr
			}
			return true, errors.New("levee/amqp: channel closed")
		case <-ctx.Done():
			return true, errConsumerStopped
		case <-s.closing:
			return true, errConsumerStopped
		}
	}
}

// marshaler returns the Marshaler for deliveries on conn: Levee's reads
// the delivery count where that server version keeps it (a broker
// upgraded under a running consumer is read right after the reconnect).
func (s *consumer) marshaler(conn *amqp.Connection) wamqp.Marshaler {
	m, ok := s.cfg.Marshaler.(Marshaler)
	if !ok {
		return s.cfg.Marshaler
	}
	version, _ := conn.Properties["version"].(string)
	m.AcquiredCount = ServerCountsAcquisitions(version)
	return m
}

// deliver hands d over and settles it with the handler's Ack or Nack;
// false means the subscription ended (d was requeued).
func (s *consumer) deliver(ctx context.Context, m wamqp.Marshaler, d amqp.Delivery, out chan<- *message.Message) bool {
	requeue := !s.cfg.Consume.NoRequeueOnNack
	msg, err := m.Unmarshal(d)
	if err != nil {
		// Never acked unprocessed: back to the queue (or to its
		// dead-letter exchange when NoRequeueOnNack is set).
		s.logger.Error("cannot unmarshal AMQP delivery, nacking it", err, nil)
		s.settle(d.Nack(false, requeue))
		return true
	}
	if d.Redelivered {
		msg.Metadata.Set(wamqp.MetadataRedeliveredKey, "true")
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(mctx)
	select {
	case out <- msg:
	case <-ctx.Done():
		s.settle(d.Nack(false, true))
		return false
	case <-s.closing:
		s.settle(d.Nack(false, true))
		return false
	}
	// As watermill-amqp: wait for the handler's verdict even when ctx is
	// done (the router cancels it while its handlers finish).
	select {
	case <-msg.Acked():
		s.settle(d.Ack(false))
	case <-msg.Nacked():
		s.settle(d.Nack(false, requeue))
	case <-s.closing:
		s.settleClosing(d, msg, cancel, requeue)
		return false
	}
	return true
}

// settleGrace is how long Close waits for a held delivery's verdict.
const settleGrace = kit.SettleGrace

// settleClosing settles d when Close came before its handler's verdict.
// A router closes its subscriber as its Close begins, while its handlers
// still run: Close requeued at once, so a message whose handler finished
// a moment later was not acked and ran again on another consumer (every
// message in flight at a rolling deploy). The message's context ends
// (cancelMsg), so the stack's waits end, and its verdict is taken for up
// to settleGrace; a handler still running then leaves it requeued.
func (s *consumer) settleClosing(d amqp.Delivery, msg *message.Message, cancelMsg context.CancelFunc, requeue bool) {
	cancelMsg()
	switch kit.AwaitVerdict(msg) {
	case kit.Acked:
		s.settle(d.Ack(false))
	case kit.Nacked:
		s.settle(d.Nack(false, requeue))
	default:
		s.settle(d.Nack(false, true))
	}
}

// settle logs a failed Ack or Nack: the channel is gone and RabbitMQ
// requeues the delivery, which is delivered again.
func (s *consumer) settle(err error) {
	if err != nil {
		s.logger.Error("AMQP ack/nack failed (the delivery will be redelivered)", err, nil)
	}
}

// Close stops every subscription, requeueing deliveries in flight, and
// waits for their channels to close. The connection is not closed.
func (s *consumer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stop()
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
