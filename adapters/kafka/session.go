package kafka

import (
	"context"
	"sync"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
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

// sessions records, per claimed partition, the context of the
// consumer-group session whose ConsumeClaim is running for it. In one
// group a partition has at most one running ConsumeClaim: a new session
// starts only after every claim of the old one returned. Safe for
// concurrent use.
type sessions struct {
	mu sync.Mutex
	m  map[claimKey]*claim // guarded by mu
}

// claim is one running ConsumeClaim.
type claim struct {
	sess context.Context
	// release ends the binding of the partition's last message (its
	// context and its registration on sess). watermill-kafka hands over
	// one message of a partition at a time, so a partition's next message
	// (a Nacked one's re-sent copy included) comes only after the last
	// one was settled: at most one binding per partition is kept.
	release func()
}

func newSessions() *sessions { return &sessions{m: map[claimKey]*claim{}} }

func (s *sessions) set(k claimKey, sess context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = &claim{sess: sess}
}

func (s *sessions) clear(k claimKey, sess context.Context) {
	s.mu.Lock()
	var release func()
	if c := s.m[k]; c != nil && c.sess == sess {
		release = c.release
		delete(s.m, k)
	}
	s.mu.Unlock()
	if release != nil {
		release()
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
	s.mu.Unlock()
	if prev != nil {
		prev()
	}
	msg.SetContext(ctx)
	return true
}

// forward hands over the messages of in, consumed from topic, bound to
// their sessions, until in closes (the subscription's end). A message it
// cannot hand over because ctx ended is Nacked.
func (s *sessions) forward(ctx context.Context, topic string, in <-chan *message.Message, out chan<- *message.Message) {
	defer close(out)
	for msg := range in {
		if !s.bind(topic, msg) {
			continue
		}
		select {
		case out <- msg:
		case <-ctx.Done():
			msg.Nack()
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
	return h.ConsumerGroupHandler.ConsumeClaim(sess, c)
}
