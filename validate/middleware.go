package validate

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Middleware is a consumer middleware: it validates each message's payload
// against the schema of the subscribed topic (message.SubscribeTopicFromCtx,
// resolved on the first message) and returns a *Error of class validation
// instead of calling next when it is invalid; with the dlq Retrier outside it
// (dlq slot), the message is dead-lettered at once. Messages of a topic
// without a schema pass through. Safe for concurrent use.
func (r *Registry) Middleware(next message.HandlerFunc) message.HandlerFunc {
	var resolved atomic.Pointer[topicSchema]
	return func(msg *message.Message) ([]*message.Message, error) {
		ts := resolved.Load()
		if ts == nil {
			topic := message.SubscribeTopicFromCtx(msg.Context())
			ts = &topicSchema{topic: topic, schema: r.schemas[topic]}
			if topic != "" {
				resolved.Store(ts)
			}
		}
		if ts.schema != nil {
			if err := check(ts.schema, ts.topic, msg.Payload); err != nil {
				return nil, err
			}
		}
		return next(msg)
	}
}

type topicSchema struct {
	topic  string
	schema *jsonschema.Schema
}

// MiddlewareFor is Middleware for a fixed topic, for handlers called
// outside a Watermill router. It returns an error wrapping ErrInvalidConfig when
// topic has no schema.
func (r *Registry) MiddlewareFor(topic string) (message.HandlerMiddleware, error) {
	sch, ok := r.schemas[topic]
	if !ok {
		return nil, fmt.Errorf("%w: no schema for topic %q", ErrInvalidConfig, topic)
	}
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if err := check(sch, topic, msg.Payload); err != nil {
				return nil, err
			}
			return next(msg)
		}
	}, nil
}

// Publisher returns a message.Publisher that validates every message
// against the schema of the topic it is published to before handing the
// batch to next. If any message is invalid, nothing is published and the
// error (wrapping ErrInvalidMessage, and every *Error through errors.As) lists the
// violations of each invalid message by UUID. Topics without a schema pass
// through. Close closes next. Safe for concurrent use if next is.
func (r *Registry) Publisher(next message.Publisher) message.Publisher {
	return &publisher{r: r, next: next}
}

type publisher struct {
	r    *Registry
	next message.Publisher
}

// PublishError is returned by the validating publisher when messages are
// invalid; nothing of the batch was published.
type PublishError struct {
	Topic   string
	Invalid map[string]*Error // by message UUID
}

// Error lists every invalid message and its violations.
func (e *PublishError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "levee/validate: refused to publish %d invalid message(s) to %s", len(e.Invalid), e.Topic)
	for _, id := range sortedKeys(e.Invalid) {
		fmt.Fprintf(&b, "; message %s: ", id)
		for i, v := range e.Invalid[id].Violations {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v.String())
		}
	}
	return b.String()
}

// Unwrap returns the per-message errors (each wraps ErrInvalidMessage).
func (e *PublishError) Unwrap() []error {
	out := make([]error, 0, len(e.Invalid))
	for _, id := range sortedKeys(e.Invalid) {
		out = append(out, e.Invalid[id])
	}
	return out
}

func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if sch, ok := p.r.schemas[topic]; ok {
		var perr *PublishError
		for _, m := range msgs {
			err := check(sch, topic, m.Payload)
			if err == nil {
				continue
			}
			var ve *Error
			if !errors.As(err, &ve) {
				return err
			}
			if perr == nil {
				perr = &PublishError{Topic: topic, Invalid: map[string]*Error{}}
			}
			perr.Invalid[m.UUID] = ve
		}
		if perr != nil {
			return perr
		}
	}
	return p.next.Publish(topic, msgs...)
}

func (p *publisher) Close() error { return p.next.Close() }
