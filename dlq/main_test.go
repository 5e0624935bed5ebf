package dlq_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

// recPublisher records published messages; it fails while fail is set.
type recPublisher struct {
	mu   sync.Mutex
	fail error
	msgs map[string][]*message.Message
	n    int
}

func newRecPublisher() *recPublisher { return &recPublisher{msgs: map[string][]*message.Message{}} }

func (p *recPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.fail != nil {
		return p.fail
	}
	p.msgs[topic] = append(p.msgs[topic], msgs...)
	return nil
}

func (p *recPublisher) Close() error { return nil }

func (p *recPublisher) setFail(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

func (p *recPublisher) published(topic string) []*message.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*message.Message(nil), p.msgs[topic]...)
}

func (p *recPublisher) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := 0
	for _, m := range p.msgs {
		t += len(m)
	}
	return t
}

// classedErr is a user error type that declares its class.
type classedErr struct{ class string }

func (e classedErr) Error() string      { return "classed " + e.class }
func (e classedErr) ErrorClass() string { return e.class }

var errBoom = errors.New("boom")
