package dlqops

import (
	"bytes"
	"maps"
	"strings"
	"time"
	"unicode"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/trunc"
)

// Bounds applied when recording a dead letter, so hand-written or garbage
// metadata cannot bloat the store.
const (
	maxIDLength       = 128
	maxNameLength     = 256 // topics, handler, consumer group, error type
	maxStoredErrorLen = 4096
)

// NewRecord turns a message consumed from dlqTopic into a store record.
// It reads the Levee keys with dlq.ParseDeadLetter (defensive: a missing or
// garbage fingerprint gives UnknownGroup, garbage counts 0) and bounds every
// string and the metadata (BoundRecord), so hand-written metadata cannot
// bloat the store; FailedAt is the last failure time, or now when that is
// missing or garbage. It never fails and never panics. The record's ID
// hashes the consumer (DLQ topic, original topic, handler, consumer group),
// the message UUID and what a replay would publish (see Record.ID), as the
// message arrived (before bounding), so a redelivery maps to the same ID
// and two consumers' letters for one message are two records.
func NewRecord(msg *message.Message, dlqTopic string, now time.Time) Record {
	p := dlq.ParseDeadLetter(msg)
	rec := Record{
		UUID:          msg.UUID,
		DLQTopic:      dlqTopic,
		OriginalTopic: cleanName(p.OriginalTopic),
		Handler:       cleanName(p.Handler),
		ConsumerGroup: cleanName(p.ConsumerGroup),
		Fingerprint:   p.Fingerprint,
		ErrorClass:    cleanName(msg.Metadata[dlq.KeyErrorClass]),
		ErrorType:     cleanName(p.ErrorType),
		Error:         trunc.String(p.Error, maxStoredErrorLen),
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
	rec.ID = letterID(msg, dlqTopic)
	rec.OriginalUUID = cleanName(msg.Metadata[dlq.KeyOriginalUUID])
	if rec.OriginalUUID == "" && usableID(msg.UUID) {
		rec.OriginalUUID = msg.UUID
	}
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
	return trunc.String(s, maxNameLength)
}

// String returns "id (group, topic)" for logs.
func (dl Record) String() string {
	var b strings.Builder
	b.WriteString(dl.ID)
	b.WriteString(" (group ")
	b.WriteString(dl.Fingerprint)
	b.WriteString(", topic ")
	b.WriteString(dl.OriginalTopic)
	b.WriteString(")")
	return b.String()
}
