package dlqops_test

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// opsPublisher records published messages with the (possibly fake) time of
// each publish; it fails while fail is set.
type opsPublisher struct {
	mu    sync.Mutex
	fail  error
	msgs  []*message.Message
	topic []string
	at    []time.Time
}

func (p *opsPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	for _, m := range msgs {
		p.msgs = append(p.msgs, m)
		p.topic = append(p.topic, topic)
		p.at = append(p.at, time.Now())
	}
	return nil
}

func (p *opsPublisher) Close() error { return nil }

func (p *opsPublisher) setFail(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

func (p *opsPublisher) sent() ([]*message.Message, []string, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*message.Message(nil), p.msgs...), append([]string(nil), p.topic...), append([]time.Time(nil), p.at...)
}

// opsFailingStore fails Add while fail is set (an unreachable database).
type opsFailingStore struct {
	*dlqops.MemStore
	mu   sync.Mutex
	fail int // Add calls left to fail
}

var errOpsDown = errors.New("connection refused")

func (s *opsFailingStore) Add(ctx context.Context, letters ...dlqops.Record) (int, error) {
	s.mu.Lock()
	if s.fail > 0 {
		s.fail--
		s.mu.Unlock()
		return 0, errors.Join(dlqops.ErrStore, errOpsDown)
	}
	s.mu.Unlock()
	return s.MemStore.Add(ctx, letters...)
}

// opsDeadLetterMsg builds a well-formed dead letter message as dlq.Retrier
// writes it.
func opsDeadLetterMsg(uuid, topic, fp string, replayCount int, failedAt time.Time) *message.Message {
	m := message.NewMessage(uuid, []byte(`{"order":"`+uuid+`"}`))
	m.Metadata = message.Metadata{
		dlq.KeyOriginalTopic:  topic,
		dlq.KeyHandler:        topic + "-handler",
		dlq.KeyError:          "card declined for order " + uuid,
		dlq.KeyErrorType:      "*errors.errorString",
		dlq.KeyErrorClass:     "permanent",
		dlq.KeyFingerprint:    fp,
		dlq.KeyAttempts:       "1",
		dlq.KeyLastFailureAt:  dlq.FormatTime(failedAt),
		dlq.KeyFirstFailureAt: dlq.FormatTime(failedAt),
		dlq.KeyOriginalUUID:   uuid,
		dlq.KeyDLQTopic:       topic + ".dlq",
		dlq.KeyReplayCount:    itoa(replayCount),
		"traceparent":         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	return m
}

// opsID is the store ID of opsDeadLetterMsg(uuid, "orders", ...) with
// replay count 0, recorded from "orders.dlq".
func opsID(uuid string) string {
	return dlqops.NewRecord(opsDeadLetterMsg(uuid, "orders", opsFP, 0, opsNow), "orders.dlq", opsNow).ID
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
