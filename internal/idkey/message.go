package idkey

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// contentPrefix starts the key of a message without a UUID. No UUID's
// key starts with it: Key keeps a UUID that starts with DEL (0x7f) as its
// digest, whose key starts with digestPrefix.
const contentPrefix = "\x7fcontent:"

// Message returns msg's key in a bounded in-memory table (the dlq's
// attempt table, the priority scheduler's first arrivals): the Key of its
// UUID or, for a message without one (a producer that writes to the
// broker without Watermill's UUID header or field), contentPrefix and a
// SHA-256 of its payload and metadata, less the keys that change from one
// delivery of a message to the next (the control keys, levee_dedup_id,
// Watermill's "_watermill" keys), so each delivery of it has the same key.
// Untracked, such a message's attempt count and first arrival started
// again at every redelivery. Two messages with the same content and no
// UUID share one key.
func Message(msg *message.Message) string {
	if msg.UUID != "" {
		return Key(msg.UUID)
	}
	keys := make([]string, 0, len(msg.Metadata))
	for k := range msg.Metadata {
		if !perDelivery(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := sha256.New()
	writeField(h, msg.Payload)
	for _, k := range keys {
		writeField(h, []byte(k))
		writeField(h, []byte(msg.Metadata[k]))
	}
	return contentPrefix + string(h.Sum(nil))
}

// perDelivery reports the metadata keys that may differ between two
// deliveries of one message.
func perDelivery(k string) bool {
	switch k {
	case levee.KeyDeliveryCount, levee.KeyRetryAfter, levee.KeyRedeliverAt, levee.KeyDedupID:
		return true
	}
	return strings.HasPrefix(k, "_watermill")
}

// writeField writes b to h prefixed with its length, so no two field lists
// hash alike by shifting bytes between fields.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
