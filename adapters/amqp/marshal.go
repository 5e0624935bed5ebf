package amqp

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/priority"
)

const (
	deliveryCountHeader = "x-delivery-count"
	acquiredCountHeader = "x-acquired-count"
	uuidHeader          = wamqp.DefaultMessageUUIDHeaderKey
)

// Marshaler is the transport's wire format: watermill-amqp's
// DefaultMarshaler plus: levee_priority becomes the publishing priority
// (clamped to 0..MaxPriority; none when MaxPriority is 0); non-string
// headers (x-death) no longer fail unmarshalling: a byte array is read as
// the string of its bytes (the UUID header too), any other value as
// fmt.Sprint prints it; on quorum queues the
// broker's delivery count (x-delivery-count, or x-acquired-count from
// RabbitMQ 4.3 on) becomes levee_delivery_count; neither header is ever
// kept in metadata, and a producer's levee_delivery_count is dropped. A plain watermill-amqp service that sets it as its Marshaler
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
	// AcquiredCount reports a broker that counts every delivery of a
	// quorum queue message in x-acquired-count (RabbitMQ 4.3 and later).
	// From 4.3 on, x-delivery-count counts only deliveries that failed
	// by basic.reject or a lost consumer, not a basic.nack, which is how
	// Levee (and watermill-amqp) return a message; x-acquired-count is
	// then the count that x-delivery-count was before. When true, a
	// redelivery's count is read from x-acquired-count (x-delivery-count
	// when the broker did not set it). When false, x-acquired-count is
	// never read: on an older broker only a producer can have set it. The
	// Levee subscriber sets it from the server version of each connection
	// (ServerCountsAcquisitions).
	AcquiredCount bool
}

// ServerCountsAcquisitions reports whether a RabbitMQ server of version
// (the "version" server property, such as "4.3.0") counts every delivery
// in x-acquired-count: 4.3 and later. An unparsable version reports false.
func ServerCountsAcquisitions(version string) bool {
	major, rest, _ := strings.Cut(version, ".")
	minor, _, _ := strings.Cut(rest, ".")
	minor, _, _ = strings.Cut(minor, "-")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > 4 || (ma == 4 && mi >= 3)
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

// priorityOf reads levee_priority as the priority scheduler does
// (priority.Parse: ASCII spaces around it, a sign, saturating at
// priority.MaxPriority), then clamps it to max; a missing or invalid value
// is 0. So the broker orders messages the way the scheduler ranks them.
func priorityOf(msg *message.Message, maxPrio int) uint8 {
	n, ok := priority.Parse(msg.Metadata.Get(MetadataPriority))
	if !ok || n <= 0 {
		return 0
	}
	return uint8(min(n, maxPrio))
}

// Unmarshal turns a delivery into a message.
func (m Marshaler) Unmarshal(d amqp.Delivery) (*message.Message, error) {
	count, counted := m.deliveryCount(d)
	clean := true
	for k, v := range d.Headers {
		if _, ok := v.(string); !ok || k == deliveryCountHeader || k == acquiredCountHeader {
			clean = false
			break
		}
	}
	if !clean {
		h := make(amqp.Table, len(d.Headers))
		for k, v := range d.Headers {
			if k == deliveryCountHeader || k == acquiredCountHeader {
				continue
			}
			switch v := v.(type) {
			case string:
				h[k] = v
			case []byte: // a byte array (type 'x'): how pika and the Java client send bytes
				h[k] = string(v)
			default:
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
//
// From RabbitMQ 4.3 on (AcquiredCount), a basic.nack no longer increments
// x-delivery-count, which then stays 0 for a message Levee returned any
// number of times; x-acquired-count counts every return (1 on the first
// redelivery, as x-delivery-count did before) and is read instead, by the
// same rules.
func (m Marshaler) deliveryCount(d amqp.Delivery) (int64, bool) {
	if !m.Quorum {
		return 0, false
	}
	if !d.Redelivered {
		return 1, true
	}
	if m.AcquiredCount {
		if c, ok := headerCount(d.Headers[acquiredCountHeader]); ok {
			return c + 1, true
		}
	}
	if c, ok := headerCount(d.Headers[deliveryCountHeader]); ok {
		return c + 1, true
	}
	return 1, true
}

// headerCount reads a broker's count header: an integer from 0 to below
// math.MaxInt64, else ok is false.
func headerCount(h any) (int64, bool) {
	var c int64 = -1
	switch v := h.(type) {
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
		return 0, false
	}
	return c, true
}
