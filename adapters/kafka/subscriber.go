package kafka

import (
	"context"
	"sync"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/transport"
)

// subscriber subscribes one group member per Subscribe; the group's
// partitions are consumed concurrently, one message per partition at a time.
// A message's context ends when a rebalance takes its partition away
// (session.go).
//
// A Watermill router cancels its subscriptions' contexts as its Close
// begins, while its handlers still run, and watermill-kafka then stops
// waiting for their Acks: their offsets were not committed, and the
// partitions' next owner ran every message in flight at a rolling deploy
// again. So watermill-kafka gets a context of its own for each
// subscription, ended only once the messages in flight were settled
// (each within kit.SettleGrace) and the acked ones' offsets marked; the
// session's end then commits them (sessions.settle).
//
// It is safe for concurrent use.
type subscriber struct {
	sub      *wkafka.Subscriber
	topics   *topics
	sessions *sessions

	mu      sync.Mutex
	closed  bool // guarded by mu
	closing chan struct{}
	// settling counts the subscriptions whose messages in flight are not
	// yet settled; wg counts the relays, which end once watermill-kafka
	// closed their channels.
	settling sync.WaitGroup
	wg       sync.WaitGroup
}

func newSubscriber(sub *wkafka.Subscriber, t *topics, sess *sessions) *subscriber {
	return &subscriber{sub: sub, topics: t, sessions: sess, closing: make(chan struct{})}
}

// Subscribe subscribes a group member to topic with a context of its own
// and relays its messages until ctx ends or the subscriber closes.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.topics.ensure(topic); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, transport.ErrClosed
	}
	s.settling.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	sub := &subscription{topic: topic}
	subCtx, endSub := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), subscriptionKey{}, sub))
	in, err := s.sub.Subscribe(subCtx, topic)
	if err != nil {
		endSub()
		s.settling.Done()
		s.wg.Done()
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer s.wg.Done()
		s.sessions.relay(ctx, s.closing, sub, in, out)
		s.sessions.settle(sub)
		close(out)
		s.settling.Done()
		endSub()
		// What watermill-kafka still hands over until its consumer stops
		// was not handled: it is left unsettled, so its offset is not
		// committed and the partition's next owner reads it.
		for range in {
		}
	}()
	return out, nil
}

// SubscribeInitialize creates topic with the configured partitions.
func (s *subscriber) SubscribeInitialize(topic string) error { return s.topics.ensure(topic) }

// Close settles the messages in flight (each within kit.SettleGrace),
// then closes watermill-kafka's subscriber, which would otherwise stop
// waiting for the Acks of handlers about to finish, and waits for the
// relays. It is idempotent.
func (s *subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.settling.Wait()
	err := s.sub.Close()
	s.wg.Wait()
	return err
}
