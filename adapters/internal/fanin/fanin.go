// Package fanin merges several subscriptions into one channel with a hard
// cap on the messages in flight, and applies Levee's trust boundary at
// ingress. The adapters facade re-exports it as adapters.FanIn,
// adapters.NewFanIn and adapters.NewLimiter; the per-transport packages
// build their subscribers with it.
package fanin

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
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
// it over, so a producer cannot steer a consumer through them. A
// transport that sets the delivery count from its broker keeps it.
//
// FanIn is safe for concurrent use.
type FanIn struct {
	subs    []message.Subscriber
	workers int // forwarders per underlying subscription
	// keep are the control keys the underlying subscriber sets itself and
	// the FanIn keeps: levee_delivery_count from the broker (RabbitMQ
	// quorum queues), levee_undecodable on a message it could not decode
	// (Redis Streams, PostgreSQL).
	keep []string

	mu      sync.Mutex
	closed  bool          // guarded by mu
	closing chan struct{} // closed by Close
	done    chan struct{} // closed once Close closed the subscribers
	wg      sync.WaitGroup
}

// New returns a FanIn over subs. It needs at least one subscriber.
func New(subs ...message.Subscriber) (*FanIn, error) {
	if len(subs) == 0 {
		return nil, errors.New("levee/adapters: NewFanIn needs at least one subscriber")
	}
	for _, s := range subs {
		if s == nil {
			return nil, errors.New("levee/adapters: NewFanIn got a nil subscriber")
		}
	}
	return &FanIn{subs: subs, workers: 1, closing: make(chan struct{}), done: make(chan struct{})}, nil
}

// NewTrusted is New for a transport whose subscriber sets
// levee_delivery_count from the broker (RabbitMQ): the FanIn keeps that key
// and strips the other control keys.
func NewTrusted(subs ...message.Subscriber) (*FanIn, error) {
	f, err := New(subs...)
	if err != nil {
		return nil, err
	}
	f.keep = append(f.keep, levee.KeyDeliveryCount)
	return f, nil
}

// TrustUndecodable makes f keep levee.KeyUndecodable, for a subscriber
// that sets it on a message it could not decode and drops a producer's.
// Call it before Subscribe.
func (f *FanIn) TrustUndecodable() { f.keep = append(f.keep, levee.KeyUndecodable) }

// NewLimiter returns a FanIn that subscribes sub once per topic and hands
// over at most n messages at a time from it: n forwarders share the one
// subscription, each waiting for its message's Ack or Nack before taking
// the next. Use it for subscribers that otherwise hand over without bound
// (GoChannel) or one per partition (Kafka).
func NewLimiter(sub message.Subscriber, n int) (*FanIn, error) {
	if n < 1 {
		return nil, errors.New("levee/adapters: NewLimiter needs n >= 1")
	}
	f, err := New(sub)
	if err != nil {
		return nil, err
	}
	f.workers = n
	return f, nil
}

// Width is the maximum number of messages in flight per topic.
func (f *FanIn) Width() int { return len(f.subs) * f.workers }

// Subscribe subscribes every underlying subscription to topic. If one
// fails, the ones already made are cancelled and the error is returned.
// The returned channel closes when ctx is done or FanIn is closed and every
// underlying channel has closed.
func (f *FanIn) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, transport.ErrClosed
	}
	f.wg.Add(1)
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	chans := make([]<-chan *message.Message, 0, len(f.subs))
	for _, s := range f.subs {
		ch, err := s.Subscribe(ctx, topic)
		if err != nil {
			cancel()
			f.wg.Done()
			return nil, err
		}
		chans = append(chans, ch)
	}

	out := make(chan *message.Message)
	var fwd sync.WaitGroup
	fwd.Add(len(chans) * f.workers)
	for _, ch := range chans {
		for range f.workers {
			go f.forward(ctx, ch, out, &fwd)
		}
	}
	go func() {
		fwd.Wait()
		cancel()
		close(out)
		f.wg.Done()
	}()
	return out, nil
}

// forward copies messages from in to out until in closes, one at a time:
// it takes the next message only after the previous one was Acked or
// Nacked. A message it cannot hand over is Nacked so the transport
// redelivers it.
func (f *FanIn) forward(ctx context.Context, in <-chan *message.Message, out chan<- *message.Message, wg *sync.WaitGroup) {
	defer wg.Done()
	for msg := range in {
		if msg.Metadata == nil {
			// A Redis entry whose metadata is msgpack nil decodes to a
			// nil map, which the first layer that writes a key (the
			// transport's retry-after, outside the stack's recover)
			// panicked on.
			msg.Metadata = message.Metadata{}
		}
		kit.StripControl(msg.Metadata, f.keep...)
		select {
		case out <- msg:
			select {
			case <-msg.Acked():
			case <-msg.Nacked():
			case <-ctx.Done():
			case <-f.closing:
			}
			continue
		case <-ctx.Done():
		case <-f.closing:
		}
		msg.Nack()
	}
}

// Close stops handing over messages, closes every distinct underlying
// subscriber and waits for the merged channels to close. It is idempotent:
// a later call returns nil once the first has closed the subscribers (a
// Watermill router closes its handlers' subscriber itself and returns
// before that Close does, so the transport's Close waits here for it).
//
// The distinct subscribers (Redis consumer-group members) are closed at
// the same time: each ends the context of the message it holds and then
// waits up to kit.SettleGrace for it to be settled. Closed one after
// another, the last member's message stayed live for a grace per member
// before it (its waits went on during the shutdown), and Close took a
// grace per member.
func (f *FanIn) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		<-f.done
		return nil
	}
	f.closed = true
	close(f.closing)
	f.mu.Unlock()
	defer close(f.done)

	seen := make(map[message.Subscriber]bool, len(f.subs))
	errs := make([]error, len(f.subs))
	var closing sync.WaitGroup
	for i, s := range f.subs {
		if seen[s] {
			continue
		}
		seen[s] = true
		closing.Go(func() { errs[i] = s.Close() })
	}
	closing.Wait()
	f.wg.Wait()
	return errors.Join(errs...)
}

// SubscribeInitialize forwards to the first underlying subscriber when it
// implements message.SubscribeInitializer.
func (f *FanIn) SubscribeInitialize(topic string) error {
	if si, ok := f.subs[0].(message.SubscribeInitializer); ok {
		return si.SubscribeInitialize(topic)
	}
	return nil
}
