package validate

import (
	"slices"
	"strconv"
	"strings"

	"github.com/levee-dev/levee"
)

// Violation is one failing schema check.
type Violation struct {
	// InstancePath is the JSON pointer of the failing value in the payload
	// ("" for the root), e.g. "/to".
	InstancePath string
	// KeywordPath is the JSON pointer of the failing keyword in the schema,
	// e.g. "/properties/to/pattern"; "" for malformed JSON.
	KeywordPath string
	// Message says what is wrong.
	Message string
}

// String returns "<instance path> (<keyword path>): <message>", with "/"
// for the root.
func (v Violation) String() string {
	ip := v.InstancePath
	if ip == "" {
		ip = "/"
	}
	if v.KeywordPath == "" {
		return ip + ": " + v.Message
	}
	return ip + " (" + v.KeywordPath + "): " + v.Message
}

// Error is a payload that failed validation. Its class is "validation": the
// dlq Retrier dead-letters it at once, with the violations in metadata
// (levee_validation_errors). It wraps ErrInvalidMessage.
type Error struct {
	Topic      string
	Violations []Violation
}

// maxListed bounds the violations listed in Error().
const maxListed = 10

// Error lists the violations: "levee/validate: message does not match its
// schema: topic sms.send: /to (...): ...; /body (...): ...".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidMessage.Error())
	b.WriteString(": topic ")
	b.WriteString(e.Topic)
	b.WriteString(": ")
	for i, v := range e.Violations {
		if i == maxListed {
			b.WriteString("; and " + strconv.Itoa(len(e.Violations)-maxListed) + " more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// Unwrap returns ErrInvalidMessage.
func (e *Error) Unwrap() error { return ErrInvalidMessage }

// ErrorClass returns "validation".
func (e *Error) ErrorClass() string { return string(levee.ClassValidation) }

// ValidationErrors returns the violations as strings (Violation.String);
// the dlq Retrier writes them to levee_validation_errors.
func (e *Error) ValidationErrors() []string {
	out := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		out[i] = v.String()
	}
	return out
}

// FailureKey says which failure this is apart from the payload that
// failed: the topic and the failing schema keywords (each violation's
// KeywordPath, sorted, once each). A violation's message and instance path
// carry the payload's values, property names and positions ("'alice' does
// not match pattern", "additional properties 'zzq' not allowed"), so two
// messages failing one schema rule differ there. A violation without a
// keyword path (malformed JSON, an oversized number) counts by its
// message up to the first ": ". The dlq Retrier fingerprints a validation
// error by its FailureKey (dlq.KeyFingerprint), so the messages that fail
// one rule are one dead-letter group whatever their payloads.
func (e *Error) FailureKey() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		k := v.KeywordPath
		if k == "" {
			k, _, _ = strings.Cut(v.Message, ": ")
		}
		parts = append(parts, k)
	}
	slices.Sort(parts)
	return "topic " + e.Topic + ": " + strings.Join(slices.Compact(parts), "; ")
}
