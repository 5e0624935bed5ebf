package dlq

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// letterIDPrefix starts every store ID NewRecord computes.
const letterIDPrefix = "dl-"

// letterID returns the store ID of the dead letter msg consumed from
// dlqTopic (see Record.ID): "dl-" and 32 hex digits of a SHA-256 over
//
//   - the consumer: the DLQ topic, KeyOriginalTopic, KeyHandler and
//     KeyConsumerGroup as the letter carries them;
//   - the message UUID;
//   - what a replay of the letter would publish: the payload and every
//     metadata key except the failure keys (they describe one
//     dead-lettering and are written anew on each), the trace context
//     (the tracing publisher injects a new one on each publish) and what a
//     transport adds per delivery (KeyDeliveryCount, Watermill's
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
	h := sha256.New()
	writeField(h, "levee dead letter v1")
	writeField(h, dlqTopic)
	writeField(h, msg.Metadata[KeyOriginalTopic])
	writeField(h, msg.Metadata[KeyHandler])
	writeField(h, msg.Metadata[KeyConsumerGroup])
	writeField(h, msg.UUID)
	writeLen(h, len(msg.Payload))
	h.Write(msg.Payload)
	for _, k := range slices.Sorted(maps.Keys(msg.Metadata)) {
		if !identityKey(k) {
			continue
		}
		writeField(h, k)
		writeField(h, msg.Metadata[k])
	}
	return letterIDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// identityKey reports whether metadata key k takes part in a letter's ID.
func identityKey(k string) bool {
	switch k {
	case KeyDeliveryCount, keyTraceparent, keyTracestate:
		return false
	}
	if strings.HasPrefix(k, "_watermill") {
		return false
	}
	return !slices.Contains(failureKeys[:], k)
}

func writeLen(h hash.Hash, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

func writeField(h hash.Hash, s string) {
	writeLen(h, len(s))
	_, _ = io.WriteString(h, s)
}
