package dedup

import (
	"errors"
	"fmt"

	"github.com/levee-dev/levee"
)

// ErrInvalidConfig is wrapped by every configuration error from New, the
// options, the key functions and Config.Validate. errors.Is matches it with
// levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/dedup: invalid configuration")

// ErrInProgress is wrapped by the deferral returned for a message whose
// identity another delivery holds a claim on: the handler was not run,
// the message is redelivered after the deferral's RetryAfter (at most the
// claim's remaining lease). Test it with errors.Is.
var ErrInProgress = errors.New("levee/dedup: message in progress elsewhere")

// ErrStore is wrapped by the deferral returned when the store could not be
// asked for a claim (an outage, a deadline): the handler was not run and
// the message is not counted as an attempt.
var ErrStore = errors.New("levee/dedup: store unavailable")

// ErrNoKey is wrapped by the error of a message whose identity cannot be
// read (the metadata key is missing, the JSON pointer matches nothing or
// the payload is not JSON). It declares the class "validation": the dlq
// dead-letters such a message at once, with the reason.
var ErrNoKey = errors.New("levee/dedup: message has no identity")

// ErrKeyRefused is wrapped, with the store's error, by the error of a
// message whose identity the store refuses for what it is rather than for
// its state: the store's Claim error declares the class "validation"
// (levee.Classed), e.g. a database that cannot keep the key, so the same
// claim would fail on every redelivery. It declares the class
// "validation": the dlq dead-letters the message at once, with the reason,
// instead of deferring it for ever as an outage (ErrStore).
var ErrKeyRefused = errors.New("levee/dedup: the store refuses the message's identity")

// ErrAlreadyDone is returned by a transactional done mark (see the
// adapters' PostgreSQL inbox) when another delivery of the same identity
// committed its mark first: the caller must roll its transaction back, so
// the side effects happen once.
var ErrAlreadyDone = errors.New("levee/dedup: identity already done")

// keyError is ErrNoKey with its detail; class "validation".
type keyError struct{ detail string }

func (e *keyError) Error() string      { return ErrNoKey.Error() + ": " + e.detail }
func (e *keyError) Unwrap() error      { return ErrNoKey }
func (e *keyError) ErrorClass() string { return string(levee.ClassValidation) }

// refusedError is ErrKeyRefused with the key and the store's error; class
// "validation".
type refusedError struct {
	key string
	err error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("%v: claim %q: %v", ErrKeyRefused, e.key, e.err)
}
func (e *refusedError) Unwrap() []error    { return []error{ErrKeyRefused, e.err} }
func (e *refusedError) ErrorClass() string { return string(levee.ClassValidation) }
