package amqp

import (
	"fmt"
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
// headers (x-delivery-count, x-death) no longer fail unmarshalling;
// x-delivery-count becomes levee_delivery_count, and a producer's
// levee_delivery_count is dropped. A plain watermill-amqp service that
// sets it as its Marshaler reads and writes what Levee does. The zero
// value is a classic-queue marshaler without priority. It is safe for
// concurrent use.
type Marshaler struct {
	// MaxPriority is the queues' x-max-priority; 0 maps no priority.
	MaxPriority int
	// Quorum reports quorum queues, whose first delivery carries no
	// x-delivery-count: it is then reported as 1.
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
	var count int64 = -1
	clean := true
	for k, v := range d.Headers {
		if _, ok := v.(string); !ok {
			clean = false
		}
		if k == deliveryCountHeader {
			switch c := v.(type) {
			case int64:
				count = c
			case int32:
				count = int64(c)
			case int:
				count = int64(c)
			}
		}
	}
	if !clean {
		h := make(amqp.Table, len(d.Headers))
		for k, v := range d.Headers {
			if s, ok := v.(string); ok {
				h[k] = s
			} else if k != deliveryCountHeader {
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
	if count >= 0 {
		msg.Metadata.Set(levee.KeyDeliveryCount, strconv.FormatInt(count+1, 10))
	} else if m.Quorum {
		// Quorum queues add x-delivery-count from the first redelivery on.
		msg.Metadata.Set(levee.KeyDeliveryCount, "1")
	}
	return msg, nil
}
