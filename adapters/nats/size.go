package nats

import (
	"io"
	"net/http"

	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"

	"github.com/levee-dev/levee"
)

// tooLarge returns err as a *levee.TooLargeError naming the largest of
// msgs as the transport writes it and the server's max_payload.
func tooLarge(err error, limit int64, msgs []*message.Message) error {
	var size int64
	for _, m := range msgs {
		size = max(size, wireSize(m))
	}
	return &levee.TooLargeError{Size: size, Limit: limit, Err: err}
}

// wireSize is what NATS counts against max_payload for msg: the payload
// and the header block as nats.go writes it ("NATS/1.0\r\n", the headers
// as net/http writes them, "\r\n"), from the transport's marshaler.
func wireSize(msg *message.Message) int64 {
	if msg == nil {
		return 0
	}
	m, err := marshaler{}.Marshal("", msg)
	if err != nil {
		return 0
	}
	var n countWriter
	if len(m.Header) > 0 {
		_ = http.Header(m.Header).Write(&n)
		n += countWriter(len("NATS/1.0\r\n") + len("\r\n"))
	}
	return int64(n) + int64(len(m.Data))
}

// countWriter counts the bytes written to it.
type countWriter int64

var _ io.Writer = (*countWriter)(nil)

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// errCodeMessageTooLarge is JetStream's error code for a message over its
// stream's max_msg_size (JSStreamMessageExceedsMaximumErr).
const errCodeMessageTooLarge nc.ErrorCode = 10054

// streamLimit is the stream's max_msg_size, 0 when it cannot be read.
func (p topicPublisher) streamLimit(stream string) int64 {
	js, err := p.conn.JetStream()
	if err != nil {
		return 0
	}
	info, err := js.StreamInfo(stream)
	if err != nil || info.Config.MaxMsgSize <= 0 {
		return 0
	}
	return int64(info.Config.MaxMsgSize)
}
