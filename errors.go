package levee

import (
	"errors"
	"strconv"
)

// ErrInvalidConfig is matched (errors.Is) by every error a Levee package
// returns for an invalid setting: each package has a sentinel of its own,
// named ErrInvalidConfig too, made with InvalidConfigSentinel, so a caller
// may test for the package's or for this one.
var ErrInvalidConfig = errors.New("levee: invalid configuration")

// InvalidConfigSentinel returns a distinct sentinel error with the given
// text that errors.Is also matches with ErrInvalidConfig. Each package makes
// its own ErrInvalidConfig with it.
func InvalidConfigSentinel(text string) error { return &configSentinel{text: text} }

type configSentinel struct{ text string }

func (e *configSentinel) Error() string        { return e.text }
func (e *configSentinel) Is(target error) bool { return target == ErrInvalidConfig }

// ErrTooLarge is wrapped by the error a transport's publisher returns for
// a message over the broker's size limit (a *TooLargeError), so the dlq
// can tell a letter the broker will never take from a broker that is down.
var ErrTooLarge = errors.New("levee: message too large for the broker")

// TooLargeError reports a message the broker refuses for its size. Size
// and Limit are in bytes as the broker counts them (NATS: headers and
// payload against the server's max_payload); zero when the transport does
// not tell. Err is the client's error.
type TooLargeError struct {
	Size, Limit int64
	Err         error
}

// Error describes the refusal, with the sizes when known.
func (e *TooLargeError) Error() string {
	s := ErrTooLarge.Error()
	if e.Size > 0 {
		s += ": " + strconv.FormatInt(e.Size, 10) + " bytes"
	}
	if e.Limit > 0 {
		s += ": limit " + strconv.FormatInt(e.Limit, 10) + " bytes"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrTooLarge and the client's error.
func (e *TooLargeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrTooLarge}
	}
	return []error{ErrTooLarge, e.Err}
}
