package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
)

// leaseSubscriber is one slot of the Redis transport: each Subscribe
// runs a consumer-group member of its own (a watermill-redisstream
// subscriber with a consumer name used by no other subscription), which
// renews the lease on the entries it holds while the subscription is live.
//
// Redis has no Nack: watermill-redisstream re-sends a Nacked message in
// process, so an entry stays pending for its consumer, and ages, through
// every Nack. A message a layer defers again and again (a breaker open
// past its max hold, a shedding scheduler) therefore stayed pending longer
// than the ack deadline although each delivery was bounded by it, and
// another member (of this process or another) claimed it and ran it
// concurrently: a healthy message processed twice, a poison message given
// more than max attempts. Every third of the ack deadline, the member
// re-claims for itself (XCLAIM JUSTID, which resets the idle time and not
// the delivery count) the entries XPENDING lists for it. Its consumer name
// is its own, so these are exactly the entries this subscription read or
// claimed: when its process dies, the renewal stops and a live member
// claims them after the ack deadline, as before; when the subscription
// ends, the member gives them back at once (giveback.go).
// The member reads through a gatedClient, so what it holds is the message
// in its handler: the renewal keeps no entry it read ahead from an idle
// member.
//
// It is safe for concurrent use.
type leaseSubscriber struct {
	newClient func() *redis.Client
	cfg       redisstream.SubscriberConfig // Client and Consumer set per Subscribe
	consumer  string                       // the slot's name; subscriptions add a sequence number
	every     time.Duration
	logger    watermill.LoggerAdapter
	stop      *kit.Stopper // shared by the transport's slots

	mu      sync.Mutex
	closed  bool // guarded by mu
	seq     int  // guarded by mu
	closing chan struct{}
	wg      sync.WaitGroup
}

func newLeaseSubscriber(newClient func() *redis.Client, cfg redisstream.SubscriberConfig, ackDeadline time.Duration, stop *kit.Stopper, logger watermill.LoggerAdapter) *leaseSubscriber {
	return &leaseSubscriber{
		newClient: newClient, cfg: cfg, consumer: cfg.Consumer,
		every: max(ackDeadline/3, time.Millisecond), logger: logger, stop: stop, closing: make(chan struct{}),
	}
}

// Subscribe starts a member of its own on topic's stream. The channel
// closes when ctx is done or the subscriber is closed; the member's
// client is closed then.
func (s *leaseSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, transport.ErrClosed
	}
	s.seq++
	cfg := s.cfg
	cfg.Consumer = fmt.Sprintf("%s-%d", s.consumer, s.seq)
	s.wg.Add(1)
	s.mu.Unlock()

	client := s.newClient()
	gate := newGatedClient(client)
	cfg.Client = gate
	member, err := redisstream.NewSubscriber(cfg, s.logger)
	if err != nil {
		_ = client.Close()
		s.wg.Done()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	forget := s.stop.Add(cancel)
	in, err := member.Subscribe(ctx, topic)
	if err != nil {
		forget()
		cancel()
		_ = member.Close()
		s.wg.Done()
		return nil, err
	}
	out := make(chan *message.Message)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				cancel()
				return
			case <-t.C:
				s.renew(ctx, client, topic, cfg.Consumer)
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		held := relay(ctx, in, out, gate)
		forget()
		cancel()
		acked, running := settleHeld(held)
		// What the member read and did not hand over is pending for it,
		// and given back with the rest.
		for range in {
		}
		<-renewDone
		s.giveBack(client, topic, cfg.Consumer, gate.heldID(), acked, running)
		_ = member.Close() // closes client
		close(out)
	}()
	return out, nil
}

// relay hands the messages of in over to out until in closes or ctx
// ends; it returns the message handed over and not yet settled when ctx
// ended, if any. The reader of out (FanIn) reads until it is closed, and
// Nacks what it cannot hand over, so the relay never blocks for good. The
// member fetches its next entry once this one is acked; a Nacked message
// comes again.
func relay(ctx context.Context, in <-chan *message.Message, out chan<- *message.Message, gate *gatedClient) *message.Message {
	for msg := range in {
		if relayOne(ctx, msg, out, gate) {
			return msg
		}
	}
	return nil
}

// relayOne hands msg over and waits until it is settled; true if ctx
// ended first. The message's context ends with ctx, and when it is
// settled: watermill-redisstream re-sends a Nacked message as a copy
// without one (Message.Copy drops the context), so a redelivered
// message's waits did not end with the subscription (a shutdown waited
// for the router's close timeout, then left it held).
func relayOne(ctx context.Context, msg *message.Message, out chan<- *message.Message, gate *gatedClient) (held bool) {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msg.SetContext(mctx)
	out <- msg
	select {
	case <-msg.Acked():
		gate.release()
	case <-msg.Nacked():
	case <-ctx.Done():
		return true
	}
	return false
}

// leaseBatch bounds the entries renewed per tick; a member holds one
// message in process (gatedClient) and, for the moment its ack takes, the
// entry it read next.
const leaseBatch = 100

// renew resets the idle time of the entries pending for consumer on
// stream. Errors are logged: a missed renewal only lets an entry be
// claimed, as without renewal.
func (s *leaseSubscriber) renew(ctx context.Context, client *redis.Client, stream, consumer string) {
	ctx, cancel := context.WithTimeout(ctx, s.every)
	defer cancel()
	pending, err := client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: stream, Group: s.cfg.ConsumerGroup, Start: "-", End: "+", Count: leaseBatch, Consumer: consumer,
	}).Result()
	if err != nil || len(pending) == 0 {
		if err != nil && ctx.Err() == nil && !errors.Is(err, redis.Nil) {
			s.logger.Error("Redis lease renewal: XPENDING failed", err, watermill.LogFields{"stream": stream, "consumer": consumer})
		}
		return
	}
	ids := make([]string, len(pending))
	for i, p := range pending {
		ids[i] = p.ID
	}
	// MinIdle 0: the entries are this member's; JUSTID leaves the delivery
	// count alone.
	err = client.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: stream, Group: s.cfg.ConsumerGroup, Consumer: consumer, Messages: ids,
	}).Err()
	if err != nil && ctx.Err() == nil && !errors.Is(err, redis.Nil) {
		s.logger.Error("Redis lease renewal: XCLAIM failed", err, watermill.LogFields{"stream": stream, "consumer": consumer})
	}
}

// Close ends every subscription and waits for them.
func (s *leaseSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.stop.Stop() // every slot's members, not only this one's
	s.wg.Wait()
	return nil
}
