// Package idkey bounds the in-memory keys Levee derives from a message's
// UUID. A producer chooses the UUID, and a transport lets it be as large
// as a message (1 MiB on NATS and Kafka by default, more on RabbitMQ);
// a table that keeps the last N messages by UUID (the dlq's attempt
// table, the priority scheduler's first arrivals) would otherwise keep N
// such UUIDs whole after the messages are gone.
package idkey

import "crypto/sha256"

// MaxRaw is the longest UUID used as a key as it is.
const MaxRaw = 128

// digestPrefix starts the key of a UUID that is not used as it is. It
// starts with DEL (0x7f), and a UUID that starts with DEL is never used
// as it is, so such a key cannot equal a UUID kept as it is.
const digestPrefix = "\x7fsha256:"

// Key returns the key of a message UUID in a bounded in-memory table:
// the UUID itself when it has at most MaxRaw bytes and does not start
// with DEL (0x7f), which costs nothing; otherwise digestPrefix and the
// 32 bytes of its SHA-256, 40 bytes in all. Two UUIDs have one key only
// if they are equal or their SHA-256 collide. "" stays "".
func Key(uuid string) string {
	if len(uuid) <= MaxRaw && (uuid == "" || uuid[0] != 0x7f) {
		return uuid
	}
	sum := sha256.Sum256([]byte(uuid))
	return digestPrefix + string(sum[:])
}
