package dlq

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/trunc"
)

// Metadata keys. KeyDeliveryCount and KeyReplayCount are read; every other
// key is written on dead letters (the "failure keys"). A dead letter also
// keeps every metadata key of the original message, trace context
// (traceparent, tracestate) included; failure keys of an earlier dead
// lettering are replaced, never accumulated.
const (
	// KeyDeliveryCount (read) is the transport's 1-based delivery count,
	// set by adapters where the transport has one.
	KeyDeliveryCount = levee.KeyDeliveryCount
	// KeyReplayCount is how many times the message was replayed from a DLQ
	// (set by the replayer). Dead letters carry it through, normalised to a
	// decimal integer ("0" when absent or garbage).
	KeyReplayCount = "levee_replay_count"

	// KeyOriginalTopic is the topic the failed message was consumed from.
	KeyOriginalTopic = "levee_original_topic"
	// KeyHandler is the Watermill handler name.
	KeyHandler = "levee_handler"
	// KeyConsumerGroup is the consumer group (WithConsumerGroup); absent
	// when not configured.
	KeyConsumerGroup = "levee_consumer_group"
	// KeyError is the last error's message, at most WithMaxErrorLength
	// bytes.
	KeyError = "levee_error"
	// KeyErrorType is the Go type (%T) of the innermost meaningful error,
	// past fmt.Errorf wrappers and Levee class marks.
	KeyErrorType = "levee_error_type"
	// KeyErrorClass is the class: permanent, validation, panic or exhausted.
	KeyErrorClass = "levee_error_class"
	// KeyFingerprint groups the same failure across messages: 16 hex digits
	// of SHA-256 over the error type and the message with numbers, UUIDs and
	// hex ids masked (for an error in the chain with a FailureKey() string
	// method, that key instead of the message: validate.Error gives its
	// topic and failing schema keywords, not the payload values its message
	// quotes); for a panic whose stack has a frame of the project's
	// code, also over that frame's function (as ServicePulse groups by the
	// first frame): the same panic from two places is two groups, and one
	// place panicking with values that differ in ids or numbers is one.
	KeyFingerprint = "levee_fingerprint"
	// KeyAttempts is the number of handler attempts made, all deliveries
	// counted.
	KeyAttempts = "levee_attempts"
	// KeyFirstFailureAt is the time of the first failure (RFC 3339, nano, UTC).
	KeyFirstFailureAt = "levee_first_failure_at"
	// KeyLastFailureAt is the time of the last failure (RFC 3339, nano, UTC).
	KeyLastFailureAt = "levee_last_failure_at"
	// KeyOriginalUUID is the UUID of the first message of the lineage: the
	// failed message's UUID, or the value it already carried (a replay).
	// It is levee.KeyOriginalUUID.
	KeyOriginalUUID = levee.KeyOriginalUUID
	// KeyDLQTopic is the topic the dead letter was published to.
	KeyDLQTopic = "levee_dlq_topic"
	// KeyValidationErrors is a JSON array of the failing schema paths
	// (instance path and keyword path, with the reason) of a validation
	// error; absent for other classes.
	KeyValidationErrors = "levee_validation_errors"
	// KeyStack is the stack of the goroutine that panicked (class panic
	// only), as runtime/debug.Stack formats it, cut to MaxStackLength bytes
	// at a UTF-8 boundary. Informational: Levee writes it on the consuming
	// side and never acts on it; a producer's value is dropped.
	KeyStack = "levee_stack"
	// KeyCodeLocation is a hint of where the failure is in the service's
	// code, "pkg.Func (file:line)": for a panic, the first frame of the
	// project's code in its stack (not the runtime, the standard library,
	// Levee or Watermill); otherwise the service's handler function: the
	// one the Retrier wraps, or the one a middleware.Stack tells it
	// (Retrier.MiddlewareFor; config and adapters/service always do). A
	// method value gives the method's name alone. Absent when neither is
	// known. Informational, like KeyStack; not part of the fingerprint.
	KeyCodeLocation = "levee_code_location"
	// KeyCompacted marks a dead letter published cut down because the
	// broker refused the whole one for its size (levee.ErrTooLarge; for a
	// publisher that does not say why, after it failed before): the keys
	// it was published without (comma-separated: KeyStack and
	// KeyValidationErrors dropped, KeyError cut to CompactErrorLength
	// bytes), or CompactedCore when only the core of Levee's keys is kept.
	// Absent on a letter published whole.
	KeyCompacted = "levee_compacted"
)

// Metadata keys the replayer (dlq/dlqops) writes on a replayed message,
// besides KeyReplayCount (the letter's count plus one), KeyOriginalUUID
// (carried through) and levee.KeyOriginalTraceparent and
// levee.KeyOriginalTracestate (the dead letter's trace context). A replay
// that fails again carries them into its dead letter.
const (
	// KeyReplayOf is the store ID of the dead letter this message replays.
	KeyReplayOf = "levee_replay_of"
	// KeyReplayedAt is the replay time (RFC 3339, nano, UTC).
	KeyReplayedAt = "levee_replayed_at"
)

// failureKeys are replaced on every dead-lettering.
var failureKeys = [...]string{
	KeyOriginalTopic, KeyHandler, KeyConsumerGroup, KeyError, KeyErrorType,
	KeyErrorClass, KeyFingerprint, KeyAttempts, KeyFirstFailureAt,
	KeyLastFailureAt, KeyDLQTopic, KeyValidationErrors, KeyStack, KeyCodeLocation,
	KeyCompacted,
}

// FailureKeys returns the keys written on every dead-lettering, which a
// re-dead-lettering replaces. KeyReplayCount and KeyOriginalUUID are carried
// through, not replaced.
func FailureKeys() []string { return append([]string(nil), failureKeys[:]...) }

// IsFailureKey reports whether k is one of FailureKeys, without copying
// them (a store hashing a letter asks it per key).
func IsFailureKey(k string) bool { return slices.Contains(failureKeys[:], k) }

// maxCount bounds every count read from metadata, so garbage never
// overflows arithmetic.
const maxCount = 1 << 30

// ParseCount parses a non-negative decimal count from a metadata value,
// defensively: surrounding spaces are trimmed; anything else that is not a
// plain decimal integer in [0, 2^30] (signs, fractions, overflow, empty)
// returns ok=false. It never panics.
func ParseCount(s string) (n int, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v > maxCount {
		return 0, false
	}
	return v, true
}

// deliveryAttempts returns the attempts made before this delivery according
// to the transport's delivery count (count-1), or 0 when absent or garbage.
func deliveryAttempts(md map[string]string) int {
	v, ok := md[KeyDeliveryCount]
	if !ok {
		return 0
	}
	n, ok := ParseCount(v)
	if !ok || n < 1 {
		return 0
	}
	return n - 1
}

// ReplayCount returns the replay count in md (KeyReplayCount), or 0 when
// absent or garbage.
func ReplayCount(md map[string]string) int {
	n, _ := ParseCount(md[KeyReplayCount])
	return n
}

// FormatTime formats t as the DLQ time keys do: RFC 3339 with nanoseconds,
// UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseTime parses a DLQ time key; ok=false for garbage.
func ParseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// validationDetails is implemented by validation errors (package validate) that
// carry the failing schema paths.
type validationDetails interface {
	ValidationErrors() []string
}

// maxValidationEntries bounds KeyValidationErrors.
const maxValidationEntries = 20

func validationMetadata(err error, maxLen int) (string, bool) {
	var vd validationDetails
	if !errors.As(err, &vd) {
		return "", false
	}
	list := vd.ValidationErrors()
	if len(list) > maxValidationEntries {
		list = append(list[:maxValidationEntries:maxValidationEntries], "…")
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = trunc.String(s, 256)
	}
	b, jerr := json.Marshal(out)
	for jerr == nil && len(b) > maxLen && len(out) > 1 {
		out = append(out[:len(out)-2:len(out)-2], "…")
		b, jerr = json.Marshal(out)
	}
	if jerr != nil {
		return "", false
	}
	if len(b) > maxLen {
		return `["…"]`, true
	}
	return string(b), true
}
