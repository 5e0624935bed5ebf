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

// DecodeDeadLetter turns a message consumed from dlqTopic into a record,
// parsing the Levee keys defensively: a missing or garbage fingerprint puts
// it in UnknownGroup, garbage counts become 0, garbage times fall back to
// now, oversize strings are cut. It never fails and never panics. The
// record's ID is the message UUID, or a content hash when the UUID is
// missing or unusable, so a redelivery maps to the same ID.
func DecodeDeadLetter(msg *message.Message, dlqTopic string, now time.Time) DeadLetter {
	md := map[string]string(msg.Metadata)
	dl := DeadLetter{
		UUID:          msg.UUID,
		DLQTopic:      dlqTopic,
		OriginalTopic: cleanName(md[KeyOriginalTopic]),
		Handler:       cleanName(md[KeyHandler]),
		ConsumerGroup: cleanName(md[KeyConsumerGroup]),
		ErrorClass:    cleanName(md[KeyErrorClass]),
		ErrorType:     cleanName(md[KeyErrorType]),
		Error:         truncate(md[KeyError], maxStoredErrorLen),
		ReceivedAt:    now.UTC(),
		Metadata:      maps.Clone(md),
		Payload:       bytes.Clone(msg.Payload),
		Status:        StatusNew,
	}
	if dl.Metadata == nil {
		dl.Metadata = map[string]string{}
	}
	dl.ID = msg.UUID
	if !usableID(dl.ID) {
		dl.ID = contentID(msg, dlqTopic)
	}
	dl.OriginalUUID = cleanName(md[KeyOriginalUUID])
	if dl.OriginalUUID == "" {
		dl.OriginalUUID = dl.ID
	}
	dl.Fingerprint = md[KeyFingerprint]
	if !validFingerprint(dl.Fingerprint) {
		dl.Fingerprint = UnknownGroup
	}
	dl.Attempts, _ = ParseCount(md[KeyAttempts])
	dl.ReplayCount = ReplayCount(md)
	dl.FailedAt = dl.ReceivedAt
	if t, ok := ParseTime(md[KeyLastFailureAt]); ok && t.Year() > 1970 && t.Year() < 10000 {
		dl.FailedAt = t.UTC()
	}
	return dl
}

// validFingerprint accepts what Fingerprint produces: 16 lower-case hex
// digits.
func validFingerprint(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
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
