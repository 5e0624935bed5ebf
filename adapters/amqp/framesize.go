package amqp

import (
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// errFrameTooLarge is the client's error in the *levee.TooLargeError of a
// message whose properties (its metadata) do not fit in one frame.
var errFrameTooLarge = errors.New("levee/amqp: the message's headers do not fit in one frame (the connection's frame_max)")

// AMQP 0-9-1 carries a message's properties, headers included, in one
// content-header frame, which may not be split: RabbitMQ closes the whole
// connection (501 FRAME_ERROR frame_too_large) on a larger one, failing
// every channel on it. The publisher checks each message against the
// frame size the server negotiated (frame_max, 128 KiB by default) before
// sending it. The body is split into frames and is limited by the
// server's max_message_size only.

// frameOverhead is a frame's type, channel, size and end octets.
const frameOverhead = 1 + 2 + 4 + 1

// headerFrameSize is the payload size of the content-header frame
// amqp091-go writes for p (write.go, headerFrame.write), or -1 when a
// header value has a type it cannot write (Publish fails on it anyway).
func headerFrameSize(p amqp.Publishing) int {
	n := 2 + 2 + 8 + 2 // class, weight, body size, property flags
	for _, s := range [...]string{p.ContentType, p.ContentEncoding, p.CorrelationId, p.ReplyTo,
		p.Expiration, p.MessageId, p.Type, p.UserId, p.AppId} {
		if s != "" {
			n += shortstrSize(s)
		}
	}
	if len(p.Headers) > 0 {
		t := tableSize(p.Headers)
		if t < 0 {
			return -1
		}
		n += t
	}
	if p.DeliveryMode > 0 {
		n++
	}
	if p.Priority > 0 {
		n++
	}
	if !p.Timestamp.IsZero() {
		n += 8
	}
	return n
}

// shortstrSize is a shortstr's size as amqp091-go writes it: a length
// octet and the string cut to that length modulo 256.
func shortstrSize(s string) int { return 1 + int(uint8(len(s))) }

// tableSize is a field table's size: a 4-octet length and each entry.
func tableSize(t amqp.Table) int {
	n := 4
	for k, v := range t {
		f := fieldSize(v)
		if f < 0 {
			return -1
		}
		n += shortstrSize(k) + f
	}
	return n
}

// fieldSize is a field value's size with its type octet (write.go,
// writeField), or -1 for a type amqp091-go cannot write.
func fieldSize(v any) int {
	switch v := v.(type) {
	case nil:
		return 1
	case bool, byte, int8:
		return 2
	case int16:
		return 3
	case int, int32, float32:
		return 5
	case amqp.Decimal:
		return 6
	case int64, float64, time.Time:
		return 9
	case string:
		return 5 + len(v)
	case []byte:
		return 5 + len(v)
	case amqp.Table:
		t := tableSize(v)
		if t < 0 {
			return -1
		}
		return 1 + t
	case []any:
		n := 5
		for _, e := range v {
			f := fieldSize(e)
			if f < 0 {
				return -1
			}
			n += f
		}
		return n
	}
	return -1
}
