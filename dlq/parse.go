package dlq

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// UnknownFingerprint is the group of a dead letter whose levee_fingerprint is
// missing or malformed (written by an older version, or by hand).
const UnknownFingerprint = "unknown"

// DeadLetter is the parsed view of a dead letter's Levee metadata, for DLQ
// consumers (monitors, reports, replayers).
type DeadLetter struct {
	UUID             string // the dead letter's UUID
	OriginalUUID     string
	OriginalTopic    string
	Handler          string
	ConsumerGroup    string
	DLQTopic         string
	Error            string
	ErrorType        string
	Class            Class // "" when missing or unknown
	Fingerprint      string
	Attempts         int // 0 when missing or garbage
	ReplayCount      int
	FirstFailureAt   time.Time // zero when missing or garbage
	LastFailureAt    time.Time
	ValidationErrors []string
	Stack            string // KeyStack: the panic's stack, "" for other classes
	CodeLocation     string // KeyCodeLocation, "" when unknown
}

// ParseDeadLetter reads msg's Levee keys defensively: it never fails and
// never panics. Missing or garbage values give zero values; a missing or
// malformed fingerprint gives UnknownFingerprint; an unknown class gives "".
func ParseDeadLetter(msg *message.Message) DeadLetter {
	md := msg.Metadata
	d := DeadLetter{
		UUID:          msg.UUID,
		OriginalUUID:  md[KeyOriginalUUID],
		OriginalTopic: md[KeyOriginalTopic],
		Handler:       md[KeyHandler],
		ConsumerGroup: md[KeyConsumerGroup],
		DLQTopic:      md[KeyDLQTopic],
		Error:         md[KeyError],
		ErrorType:     md[KeyErrorType],
		Fingerprint:   md[KeyFingerprint],
		ReplayCount:   ReplayCount(md),
		Stack:         md[KeyStack],
		CodeLocation:  md[KeyCodeLocation],
	}
	if d.OriginalUUID == "" {
		d.OriginalUUID = msg.UUID
	}
	switch c := Class(strings.TrimSpace(md[KeyErrorClass])); c {
	case ClassPermanent, ClassValidation, ClassPanic, ClassExhausted, ClassTransient:
		d.Class = c
	}
	if !validFingerprint(d.Fingerprint) {
		d.Fingerprint = UnknownFingerprint
	}
	d.Attempts, _ = ParseCount(md[KeyAttempts])
	d.FirstFailureAt, _ = ParseTime(md[KeyFirstFailureAt])
	d.LastFailureAt, _ = ParseTime(md[KeyLastFailureAt])
	if v := md[KeyValidationErrors]; v != "" {
		var list []string
		if json.Unmarshal([]byte(v), &list) == nil {
			d.ValidationErrors = list
		}
	}
	return d
}

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
