package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/internal/kit"
)

// A consumer-group rebalance ends the session that owns a partition, and
// sarama lets the group go on only when every partition's ConsumeClaim has
// returned. watermill-kafka's ConsumeClaim returns only once the message it
// handed over is acked (or the subscription ends): its context is the
// subscription's, not the session's, and a Nack is re-sent to the same
// member. A message held by Levee (an open breaker without max hold, a
// priority queue, a rate-limit wait, a dlq backoff) therefore held the
// whole group's rebalance until the hold ended, and sarama's rebalance
// timeout (60 s) dropped the member that held it.
//
// sessions fixes both ends: each message's context also ends with the
// session it was claimed in, so every wait of the stack ends and the
// router Nacks it, and a message re-sent after its session ended is
// handed to watermill-kafka as acked, which then marks no offset (its
// session is over): the partition's next owner reads it from the last
// committed offset. Nothing is lost and nothing acked unhandled; the
// rebalance goes on at once.

// claimKey names a claimed partition.
type claimKey struct {
	topic     string
	partition int32
}

// subscription identifies one Subscribe: its context, from which sarama
// derives each session's, carries it (subscriptionKey), so that a claim
// knows the subscription whose messages it hands over.
type subscription struct{ topic string }

type subscriptionKey struct{}

// sessions records, per claimed partition, the context of the
// consumer-group session whose ConsumeClaim is running for it. In one
// group a partition has at most one running ConsumeClaim: a new session
// starts only after every claim of the old one returned. Safe for
// concurrent use.
type sessions struct {
	mu sync.Mutex
	m  map[claimKey]*claim // guarded by mu
}

// claim is one running ConsumeClaim. Its fields are guarded by
// sessions.mu.
type claim struct {
	sess  context.Context
	owner *subscription
	// release ends the binding of the partition's last message (its
	// context and its registration on sess). watermill-kafka hands over
	// one message of a partition at a time, so a partition's next message
	// (a Nacked one's re-sent copy included) comes only after the last
	// one was settled: at most one binding per partition is kept.
	release func()
	// msg is that last message and offset its offset; marked is one past
	// the offset watermill-kafka last marked (0: none), and markWait,
	// when not nil, is closed at the next mark (or the claim's end).
	msg      *message.Message
	offset   int64
	marked   int64
	markWait chan struct{}
}

func newSessions() *sessions { return &sessions{m: map[claimKey]*claim{}} }

func (s *sessions) set(k claimKey, sess context.Context) {
	owner, _ := sess.Value(subscriptionKey{}).(*subscription)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = &claim{sess: sess, owner: owner}
}

func (s *sessions) clear(k claimKey, sess context.Context) {
	s.mu.Lock()
	var release func()
	if c := s.m[k]; c != nil && c.sess == sess {
		release = c.release
		if c.markWait != nil {
			close(c.markWait)
			c.markWait = nil
		}
		delete(s.m, k)
	}
	s.mu.Unlock()
	if release != nil {
		release()
	}
}

// mark records that watermill-kafka marked offset of k's claim in sess.
func (s *sessions) mark(k claimKey, sess context.Context, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[k]
	if c == nil || c.sess != sess {
		return
	}
	c.marked = max(c.marked, offset+1)
	if c.markWait != nil {
		close(c.markWait)
		c.markWait = nil
	}
}

// bind ties msg, consumed from topic, to its partition's session: its
// context ends when the session ends. It reports false when the session
// has already ended: msg is then acked for watermill-kafka to release it
// without committing its offset, and must not be handed over.
func (s *sessions) bind(topic string, msg *message.Message) bool {
	p, ok := wkafka.MessagePartitionFromCtx(msg.Context())
	if !ok {
		return true
	}
	offset, _ := wkafka.MessagePartitionOffsetFromCtx(msg.Context())
	s.mu.Lock()
	c := s.m[claimKey{topic: topic, partition: p}]
	if c == nil {
		s.mu.Unlock()
		return true
	}
	if c.sess.Err() != nil {
		s.mu.Unlock()
		// watermill-kafka marks an acked message's offset only while its
		// session lives (it reads the same session context after the Ack).
		msg.Ack()
		return false
	}
	ctx, cancel := context.WithCancel(msg.Context())
	stop := context.AfterFunc(c.sess, cancel)
	prev := c.release
	c.release = func() { stop(); cancel() }
	c.msg, c.offset = msg, offset
	s.mu.Unlock()
	if prev != nil {
		prev()
	}
	msg.SetContext(ctx)
	return true
}

// relay hands over the messages of in, consumed by sub, bound to their
// sessions, until in closes, ctx ends (the subscription's end) or closing
// is closed (the subscriber's). A message it cannot hand over then is
// Nacked.
func (s *sessions) relay(ctx context.Context, closing <-chan struct{}, sub *subscription, in <-chan *message.Message, out chan<- *message.Message) {
	for {
		select {
		case msg, ok := <-in:
			if !ok {
				return
			}
			if !s.bind(sub.topic, msg) {
				continue
			}
			select {
			case out <- msg:
				continue
			case <-ctx.Done():
			case <-closing:
			}
			msg.Nack()
			return
		case <-ctx.Done():
			return
		case <-closing:
			return
		}
	}
}

// inFlight is a message handed over and its claim.
type inFlight struct {
	c       *claim
	k       claimKey
	msg     *message.Message
	offset  int64
	release func()
}

// settle settles sub's messages in flight as its subscription ends: their
// contexts end (the stack's waits end, and a held message is Nacked), and
// within kit.SettleGrace in all it waits for each verdict and, for an
// acked message, for watermill-kafka to mark its offset, which the
// session's end then commits. A message Nacked or not settled in the
// grace keeps its offset uncommitted: the partition's next owner runs it.
func (s *sessions) settle(sub *subscription) {
	var held []inFlight
	s.mu.Lock()
	for k, c := range s.m {
		if c.owner == sub && c.msg != nil {
			held = append(held, inFlight{c: c, k: k, msg: c.msg, offset: c.offset, release: c.release})
		}
	}
	s.mu.Unlock()
	if len(held) == 0 {
		return
	}
	for _, h := range held {
		h.release()
	}
	t := time.NewTimer(kit.SettleGrace)
	defer t.Stop()
	for _, h := range held {
		select {
		case <-h.msg.Acked():
		case <-h.msg.Nacked():
			continue
		case <-t.C:
			return
		}
		if !s.awaitMark(h, t.C) {
			return
		}
	}
}

// awaitMark waits until h's offset was marked, its claim ended or
// timeout fires; it reports false on timeout.
func (s *sessions) awaitMark(h inFlight, timeout <-chan time.Time) bool {
	for {
		s.mu.Lock()
		if s.m[h.k] != h.c || h.c.marked > h.offset {
			s.mu.Unlock()
			return true
		}
		if h.c.markWait == nil {
			h.c.markWait = make(chan struct{})
		}
		w := h.c.markWait
		s.mu.Unlock()
		select {
		case <-w:
		case <-timeout:
			return false
		}
	}
}

// tracer is the watermill-kafka hook through which the subscriber learns
// each claim's session: it wraps the consumer-group handler and leaves
// everything else as it is (no tracing).
type tracer struct{ sessions *sessions }

func (t tracer) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }

func (t tracer) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}

func (t tracer) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	return claimHandler{ConsumerGroupHandler: h, sessions: t.sessions}
}

func (t tracer) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}

// claimHandler records the session of each claim while it runs.
type claimHandler struct {
	sarama.ConsumerGroupHandler
	sessions *sessions
}

func (h claimHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	k := claimKey{topic: c.Topic(), partition: c.Partition()}
	h.sessions.set(k, sess.Context())
	defer h.sessions.clear(k, sess.Context())
	return h.ConsumerGroupHandler.ConsumeClaim(markingSession{ConsumerGroupSession: sess, sessions: h.sessions, k: k}, c)
}

// markingSession is the session watermill-kafka's ConsumeClaim gets: it
// tells sessions each offset watermill-kafka marks (after an Ack), so a
// closing subscription knows when an acked message's offset will be
// committed.
type markingSession struct {
	sarama.ConsumerGroupSession
	sessions *sessions
	k        claimKey
}

func (m markingSession) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	m.ConsumerGroupSession.MarkMessage(msg, metadata)
	m.sessions.mark(m.k, m.ConsumerGroupSession.Context(), msg.Offset)
}
