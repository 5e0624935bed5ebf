package dlq

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Bounds applied when recording a dead letter, so hand-written or garbage
// metadata cannot bloat the store.
const (
	maxIDLength       = 128
	maxNameLength     = 256 // topics, handler, consumer group, error type
	maxStoredErrorLen = 4096
)

// NewRecord turns a message consumed from dlqTopic into a store record.
// It reads the Levee keys with ParseDeadLetter (defensive: a missing or
// garbage fingerprint gives UnknownGroup, garbage counts 0) and bounds every
// string and the metadata (BoundRecord), so hand-written metadata cannot
// bloat the store; FailedAt is the last failure time, or now when that is
// missing or garbage. It never fails
// and never panics. The record's ID is the message UUID, or a content hash
// when the UUID is missing or unusable, so a redelivery maps to the same ID.
func NewRecord(msg *message.Message, dlqTopic string, now time.Time) Record {
	p := ParseDeadLetter(msg)
	rec := Record{
		UUID:          msg.UUID,
		DLQTopic:      dlqTopic,
		OriginalTopic: cleanName(p.OriginalTopic),
		Handler:       cleanName(p.Handler),
		ConsumerGroup: cleanName(p.ConsumerGroup),
		Fingerprint:   p.Fingerprint,
		ErrorClass:    cleanName(msg.Metadata[KeyErrorClass]),
		ErrorType:     cleanName(p.ErrorType),
		Error:         truncate(p.Error, maxStoredErrorLen),
		Attempts:      p.Attempts,
		ReplayCount:   p.ReplayCount,
		ReceivedAt:    now.UTC(),
		Metadata:      maps.Clone(map[string]string(msg.Metadata)),
		Payload:       bytes.Clone(msg.Payload),
		Status:        StatusNew,
	}
	if rec.Metadata == nil {
		rec.Metadata = map[string]string{}
	}
	rec = BoundRecord(rec)
	rec.ID = msg.UUID
	if !usableID(rec.ID) {
		rec.ID = contentID(msg, dlqTopic)
	}
	rec.OriginalUUID = cleanName(msg.Metadata[KeyOriginalUUID])
	if rec.OriginalUUID == "" {
		rec.OriginalUUID = rec.ID
	}
	rec.FailedAt = rec.ReceivedAt
	if t := p.LastFailureAt; !t.IsZero() && t.Year() > 1970 && t.Year() < 10000 {
		rec.FailedAt = t.UTC()
	}
	return rec
}

// usableID accepts printable IDs of bounded length without spaces.
func usableID(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// cleanName trims, makes valid UTF-8 and bounds a name-like value.
func cleanName(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return truncate(s, maxNameLength)
}

// contentID hashes the DLQ topic, payload and sorted metadata.
func contentID(msg *message.Message, dlqTopic string) string {
	h := sha256.New()
	h.Write([]byte(dlqTopic))
	h.Write([]byte{0})
	h.Write([]byte(msg.UUID))
	h.Write([]byte{0})
	h.Write(msg.Payload)
	for _, k := range slices.Sorted(maps.Keys(msg.Metadata)) {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{1})
		h.Write([]byte(msg.Metadata[k]))
	}
	return "sha256-" + hex.EncodeToString(h.Sum(nil)[:16])
}
