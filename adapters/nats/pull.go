package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
)

// pullSubscriber consumes a JetStream topic with N workers sharing one
// durable pull consumer. Each worker fetches one message, hands it over and
// settles it (AckSync, NakWithDelay(levee_retry_after) or Nak) before it
// fetches the next, so exactly N are in flight when the backlog allows,
// unlike push delivery to a queue group, which picks members at random.
// Messages use watermill-nats' NATSMarshaler format (with the encoding of
// header.go for what NATS headers cannot carry), so watermill-nats
// publishers and subscribers interoperate with this one. The durable consumer is created here and survives Close.
type pullSubscriber struct {
	conn    *nc.Conn
	js      nc.JetStreamContext
	group   string
	ackWait time.Duration
	workers int
	logger  watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool // guarded by mu
	closing chan struct{}
	wg      sync.WaitGroup
}

// fetchWait bounds one Fetch, so workers notice cancellation.
const fetchWait = time.Second

func (s *pullSubscriber) SubscribeInitialize(topic string) error {
	if _, err := s.js.StreamInfo(topic); err == nil {
		return nil
	}
	_, err := s.js.AddStream(&nc.StreamConfig{Name: topic, Subjects: []string{topic}})
	if err != nil && !errors.Is(err, nc.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("levee/nats: create stream %q: %w", topic, err)
	}
	return nil
}

func (s *pullSubscriber) ensureConsumer(topic string) error {
	want := nc.ConsumerConfig{
		Durable:       s.group,
		DeliverPolicy: nc.DeliverAllPolicy,
		AckPolicy:     nc.AckExplicitPolicy,
		AckWait:       s.ackWait,
		MaxAckPending: max(4*s.workers, 256),
		FilterSubject: topic,
	}
	if info, err := s.js.ConsumerInfo(topic, s.group); err == nil {
		// Keep the broker's AckWait equal to the reported ack deadline
		// when ack_deadline or concurrency changed since it was created.
		if info.Config.AckWait == want.AckWait && info.Config.MaxAckPending >= want.MaxAckPending {
			return nil
		}
		cfg := info.Config
		cfg.AckWait, cfg.MaxAckPending = want.AckWait, max(cfg.MaxAckPending, want.MaxAckPending)
		if _, err := s.js.UpdateConsumer(topic, &cfg); err != nil {
			return fmt.Errorf("levee/nats: update durable consumer %q on stream %q to ack_deadline %s: %w", s.group, topic, s.ackWait, err)
		}
		return nil
	}
	_, err := s.js.AddConsumer(topic, &want)
	if err != nil && !errors.Is(err, nc.ErrConsumerNameAlreadyInUse) {
		return fmt.Errorf("levee/nats: create durable consumer %q on stream %q: %w", s.group, topic, err)
	}
	return nil
}

func (s *pullSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, transport.ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()

	if err := s.SubscribeInitialize(topic); err != nil {
		s.wg.Done()
		return nil, err
	}
	if err := s.ensureConsumer(topic); err != nil {
		s.wg.Done()
		return nil, err
	}
	sub, err := s.js.PullSubscribe(topic, s.group, nc.Bind(topic, s.group))
	if err != nil {
		s.wg.Done()
		return nil, fmt.Errorf("levee/nats: pull subscribe %q (durable %q): %w", topic, s.group, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	out := make(chan *message.Message)
	var workers sync.WaitGroup
	workers.Add(s.workers)
	late := &lateSettles{}
	for range s.workers {
		go s.work(ctx, sub, out, &workers, late)
	}
	go func() {
		workers.Wait()
		cancel()
		// The consumer is bound, not created by this subscription, so
		// Unsubscribe leaves the durable in place.
		_ = sub.Unsubscribe()
		// Only now settle the messages held at the close: while the
		// subscription was live, its workers' pull requests still waiting
		// on the server (a canceled Fetch is not withdrawn) took a Nacked
		// message back to this closing subscriber, which never read it,
		// and it came to another consumer only after AckWait. The server
		// handles the unsubscribe before the Nak sent after it on the
		// same connection, so the redelivery goes to a live consumer.
		late.settle(s)
		close(out)
		s.wg.Done()
	}()
	return out, nil
}

// lateSettles collects the verdicts on the messages a closing
// subscription held, to settle after it unsubscribed.
type lateSettles struct {
	mu    sync.Mutex
	items []lateSettle // guarded by mu
	// lastPull is when a worker last sent a pull request (Unix ns).
	lastPull atomic.Int64
}

type lateSettle struct {
	m     *nc.Msg
	msg   *message.Message
	acked bool
}

func (l *lateSettles) add(m *nc.Msg, msg *message.Message, acked bool) {
	l.mu.Lock()
	l.items = append(l.items, lateSettle{m, msg, acked})
	l.mu.Unlock()
}

func (l *lateSettles) settle(s *pullSubscriber) {
	l.mu.Lock()
	items := l.items
	l.items = nil
	l.mu.Unlock()
	for _, it := range items {
		if !it.acked {
			l.awaitStalePulls()
			break
		}
	}
	for _, it := range items {
		s.settle(it.m, it.msg, it.acked)
	}
}

// awaitStalePulls waits until the pull requests this subscription's
// workers left on the server have expired (a Fetch's request expires
// before fetchWait; a canceled Fetch is not withdrawn). A NATS server
// before 2.10.14 (nats-io/nats-server#5305) that redelivers a Nacked
// message while only such requests wait drops the redelivery (the
// message then comes back only after AckWait, and another one comes
// twice): on 2.9.10, 5 of 72 runs of TestShutdownHandBacksAreNotFailures
// over NATS (three at a time) held a handed-back message for AckWait, 0 of
// 84 with this wait. Once they have expired, the
// redelivery waits for a live consumer's request. It waits at most
// fetchWait, and only at a close that hands messages back.
func (l *lateSettles) awaitStalePulls() {
	if d := time.Until(time.Unix(0, l.lastPull.Load()).Add(fetchWait)); d > 0 {
		time.Sleep(min(d, fetchWait))
	}
}

func (s *pullSubscriber) work(ctx context.Context, sub *nc.Subscription, out chan<- *message.Message, wg *sync.WaitGroup, late *lateSettles) {
	defer wg.Done()
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		late.lastPull.Store(time.Now().UnixNano())
		msgs, err := sub.Fetch(1, nc.Context(fctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nc.ErrTimeout) {
				s.logger.Error("JetStream fetch failed", err, nil)
				select {
				case <-time.After(fetchWait):
				case <-ctx.Done():
				}
			}
			continue
		}
		for _, m := range msgs {
			if !s.deliver(ctx, m, out, late) {
				return
			}
		}
	}
}

// deliver hands m over and settles it; false means the subscription
// ended. A message held at the end is settled later, by late.
func (s *pullSubscriber) deliver(ctx context.Context, m *nc.Msg, out chan<- *message.Message, late *lateSettles) bool {
	msg, err := ingress(m)
	if err != nil {
		// A message Watermill cannot decode is left to the broker's
		// redelivery (and MaxDeliver); it is never acked unprocessed.
		s.logger.Error("cannot unmarshal JetStream message", err, nil)
		_ = m.Nak()
		return true
	}
	// The delivery count is the broker's.
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(levee.KeyDeliveryCount, strconv.FormatUint(md.NumDelivered, 10))
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(mctx)
	select {
	case out <- msg:
	case <-ctx.Done():
		late.add(m, msg, false)
		return false
	}
	select {
	case <-msg.Acked():
		s.settle(m, msg, true)
	case <-msg.Nacked():
		s.settle(m, msg, false)
	case <-ctx.Done():
		// The subscription ends (a shutdown). The message's context ends
		// with it, so the stack's waits end and the router settles it:
		// settle it then, so a Nacked message goes to another consumer at
		// once instead of after AckWait, and one whose handler finished
		// is not run again. A handler that does not return within
		// settleGrace leaves it to JetStream's redelivery after AckWait.
		cancel()
		if v := kit.AwaitVerdict(msg); v != kit.Running {
			late.add(m, msg, v == kit.Acked)
		}
		return false
	}
	return true
}

// settleGrace bounds how long a closing subscription waits for the
// handler of a message it handed over to settle it.
const settleGrace = kit.SettleGrace

// settle acks m (acked) or Naks it, with the delay a deferral asked for.
func (s *pullSubscriber) settle(m *nc.Msg, msg *message.Message, acked bool) {
	if acked {
		if err := m.AckSync(); err != nil {
			s.logger.Error("JetStream ack failed (the message will be redelivered)", err, nil)
		}
		return
	}
	if d := kit.RetryAfterOf(msg); d > 0 {
		_ = m.NakWithDelay(d)
	} else {
		_ = m.Nak()
	}
}

// ingress reads m for a handler: unmarshalled and decoded (header.go),
// then a producer's control keys dropped (the trust boundary). Decoding
// comes first, so a control key a producer encoded is dropped too.
func ingress(m *nc.Msg) (*message.Message, error) {
	msg, err := marshaler{}.Unmarshal(m)
	if err != nil {
		return nil, err
	}
	kit.StripControl(msg.Metadata)
	return msg, nil
}

func (s *pullSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
