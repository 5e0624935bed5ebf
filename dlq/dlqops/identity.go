package dlqops

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
)

// letterIDPrefix starts every store ID NewRecord computes.
const letterIDPrefix = "dl-"

// letterID returns the store ID of the dead letter msg consumed from
// dlqTopic (see Record.ID): "dl-" and 32 hex digits of a SHA-256 over
//
//   - the consumer: the DLQ topic, dlq.KeyOriginalTopic, dlq.KeyHandler and
//     dlq.KeyConsumerGroup as the letter carries them;
//   - the message UUID;
//   - what a replay of the letter would publish: the payload and every
//     metadata key except the failure keys (they describe one
//     dead-lettering and are written anew on each), the trace context
//     (the tracing publisher injects a new one on each publish) and what a
//     transport adds per delivery (dlq.KeyDeliveryCount, Watermill's
//     "_watermill…" keys).
//
// So a redelivery of a dead letter, and the second dead-lettering of one
// message by the same consumer after a lost ack, map to the same ID, and
// the store keeps the first; two consumers (handlers, groups or topics)
// failing one message give two letters. A producer cannot hide another
// consumer's letter by reusing its UUID, nor a letter of the same consumer
// unless it publishes the victim's exact payload and metadata, whose replay
// is then the same message (Store.Add never overwrites a stored letter).
// Every field is length-prefixed, so no two field lists hash alike by
// shifting bytes between fields.
func letterID(msg *message.Message, dlqTopic string) string {
	const version = "levee dead letter v1"
	md := msg.Metadata
	size := 8*6 + len(version) + len(dlqTopic) + len(md[dlq.KeyOriginalTopic]) + len(md[dlq.KeyHandler]) +
		len(md[dlq.KeyConsumerGroup]) + len(msg.UUID) + len(msg.Payload)
	keys := make([]string, 0, len(md))
	for k, v := range md {
		if identityKey(k) {
			keys = append(keys, k)
			size += 16 + len(k) + len(v)
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = appendField(b, version)
	b = appendField(b, dlqTopic)
	b = appendField(b, md[dlq.KeyOriginalTopic])
	b = appendField(b, md[dlq.KeyHandler])
	b = appendField(b, md[dlq.KeyConsumerGroup])
	b = appendField(b, msg.UUID)
	b = binary.BigEndian.AppendUint64(b, uint64(len(msg.Payload)))
	b = append(b, msg.Payload...)
	for _, k := range keys {
		b = appendField(b, k)
		b = appendField(b, md[k])
	}
	sum := sha256.Sum256(b)
	var id [len(letterIDPrefix) + 32]byte
	copy(id[:], letterIDPrefix)
	hex.Encode(id[len(letterIDPrefix):], sum[:16])
	return string(id[:])
}

// identityKey reports whether metadata key k takes part in a letter's ID.
func identityKey(k string) bool {
	switch k {
	case dlq.KeyDeliveryCount, keyTraceparent, keyTracestate:
		return false
	}
	if strings.HasPrefix(k, "_watermill") {
		return false
	}
	return !dlq.IsFailureKey(k)
}

// appendField appends s to b, prefixed with its length.
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}
