package amqp

import (
	"fmt"
	"math"
	"strconv"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee"
)

const (
	deliveryCountHeader = "x-delivery-count"
	uuidHeader          = wamqp.DefaultMessageUUIDHeaderKey
)

// Marshaler is the transport's wire format: watermill-amqp's
// DefaultMarshaler plus: levee_priority becomes the publishing priority
// (clamped to 0..MaxPriority; none when MaxPriority is 0); non-string
// headers (x-death) no longer fail unmarshalling; on quorum queues the
// broker's x-delivery-count becomes levee_delivery_count; x-delivery-count
// is never kept in metadata, and a producer's levee_delivery_count is
// dropped. A plain watermill-amqp service that sets it as its Marshaler
// reads and writes what Levee does. The zero value is a classic-queue
// marshaler without priority. It is safe for concurrent use.
type Marshaler struct {
	// MaxPriority is the queues' x-max-priority; 0 maps no priority.
	MaxPriority int
	// Quorum reports quorum queues, which count deliveries in
	// x-delivery-count from the first redelivery on. A first delivery is
	// reported as 1. When false (classic queues, which count nothing),
	// x-delivery-count is never read: only a producer can have set it.
	Quorum bool
}

// Marshal turns msg into a publishing.
func (m Marshaler) Marshal(msg *message.Message) (amqp.Publishing, error) {
	p, err := wamqp.DefaultMarshaler{}.Marshal(msg)
	if err != nil {
		return p, err
	}
	if m.MaxPriority > 0 {
		p.Priority = priorityOf(msg, m.MaxPriority)
	}
	return p, nil
}

// priorityOf parses levee_priority defensively, clamped to 0..max.
func priorityOf(msg *message.Message, maxPrio int) uint8 {
	v := msg.Metadata.Get(MetadataPriority)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	if n > maxPrio {
		n = maxPrio
	}
	return uint8(n)
}

// Unmarshal turns a delivery into a message.
func (m Marshaler) Unmarshal(d amqp.Delivery) (*message.Message, error) {
	count, counted := m.deliveryCount(d)
	clean := true
	for k, v := range d.Headers {
		if _, ok := v.(string); !ok || k == deliveryCountHeader {
			clean = false
			break
		}
	}
	if !clean {
		h := make(amqp.Table, len(d.Headers))
		for k, v := range d.Headers {
			if k == deliveryCountHeader {
				continue
			}
			if s, ok := v.(string); ok {
				h[k] = s
			} else {
				h[k] = fmt.Sprint(v)
			}
		}
		d.Headers = h
	}
	msg, err := wamqp.DefaultMarshaler{}.Unmarshal(d)
	if err != nil {
		return nil, err
	}
	// A producer's levee_delivery_count never survives: the count comes
	// from the broker (quorum queues) or is absent.
	delete(msg.Metadata, levee.KeyDeliveryCount)
	if counted {
		msg.Metadata.Set(levee.KeyDeliveryCount, strconv.FormatInt(count, 10))
	}
	return msg, nil
}

// deliveryCount is the delivery count of d, 1 for the first delivery,
// and whether the queue counts deliveries at all (quorum queues only).
//
// x-delivery-count is a header like any other to the broker: a classic
// queue passes a producer's value through on every delivery, and a quorum
// queue does on the first one (Redelivered false), writing its own count
// (1, 2, ...) only from the first redelivery on (checked on RabbitMQ
// 3.10.8 with basic.consume). So it is read only on a quorum queue's
// redelivery, and only when it is an integer from 0 to below
// math.MaxInt64 (so that the count plus this delivery cannot overflow);
// otherwise the count is 1, which at worst gives a message one more
// attempt than it should have, never fewer.
func (m Marshaler) deliveryCount(d amqp.Delivery) (int64, bool) {
	if !m.Quorum {
		return 0, false
	}
	if !d.Redelivered {
		return 1, true
	}
	var c int64 = -1
	switch v := d.Headers[deliveryCountHeader].(type) {
	case int64:
		c = v
	case int32:
		c = int64(v)
	case int16:
		c = int64(v)
	case int8:
		c = int64(v)
	case int:
		c = int64(v)
	}
	if c < 0 || c == math.MaxInt64 {
		return 1, true
	}
	return c + 1, true
}
