package batch

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/levee-dev/levee"
)

var (
	// ErrInvalidConfig is wrapped by every error New returns for an invalid
	// setting; the message names the setting's configuration key.
	// errors.Is matches it with levee.ErrInvalidConfig too.
	ErrInvalidConfig = levee.InvalidConfigSentinel("levee/batch: invalid configuration")

	// ErrClosed is returned for a message that reaches a closed Batcher, or
	// whose batch had not started when Shutdown's context ended. The message
	// was not processed; the transport redelivers it. It is a
	// levee.Deferral: not an attempt, not a failure.
	ErrClosed = levee.DeferralSentinel("levee/batch: batcher closed")

	// ErrInvalidResult fails a whole batch whose batch func returned an
	// *Errors naming an index outside the batch, a UUID of no message in it,
	// or a nil error. A malformed per-message result never acks anything.
	ErrInvalidResult = errors.New("levee/batch: invalid per-message result")

	// ErrGaveUp is the result of a delivery whose deadline passed while the
	// batch func had it and that the func, cancelled once every message of
	// the batch had given up, did not report processed: a failed attempt
	// (the func had the message), not a shutdown.
	ErrGaveUp = errors.New("levee/batch: every message of the batch gave up while the func ran")
	// ErrMaxHold is wrapped by *HoldError.
	ErrMaxHold = errors.New("levee/batch: batch not started within max hold")
)

// Errors is a partial failure a batch func returns: it names the messages
// that failed, by index in the slice the func received or by UUID, and the
// error of each. Only those messages fail (and go on to retry or the DLQ);
// every other message of the batch succeeds. A batch func may return it
// wrapped (errors.As finds it).
//
// Every key must name a message of the batch and every error must be
// non-nil; otherwise the whole batch fails with an error wrapping
// ErrInvalidResult. A message named both by index and by UUID gets both
// errors joined. An Errors naming nothing means the whole batch succeeded.
type Errors struct {
	// ByIndex maps an index in the batch func's msgs slice to its error.
	ByIndex map[int]error
	// ByUUID maps a message UUID to its error; it applies to every message
	// of the batch with that UUID.
	ByUUID map[string]error
}

// Fail records err for the message at index i and returns e.
func (e *Errors) Fail(i int, err error) *Errors {
	if e.ByIndex == nil {
		e.ByIndex = map[int]error{}
	}
	e.ByIndex[i] = err
	return e
}

// FailUUID records err for the message(s) with uuid and returns e.
func (e *Errors) FailUUID(uuid string, err error) *Errors {
	if e.ByUUID == nil {
		e.ByUUID = map[string]error{}
	}
	e.ByUUID[uuid] = err
	return e
}

// Len returns how many entries e holds; a nil *Errors holds none.
func (e *Errors) Len() int {
	if e == nil {
		return 0
	}
	return len(e.ByIndex) + len(e.ByUUID)
}

// Error summarises the failures: their count and the first one (lowest
// index, then lowest UUID).
func (e *Errors) Error() string {
	n := e.Len()
	if n == 0 {
		return "levee/batch: no per-message errors"
	}
	var first string
	if len(e.ByIndex) > 0 {
		idx := make([]int, 0, len(e.ByIndex))
		for i := range e.ByIndex {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		first = fmt.Sprintf("message %d: %v", idx[0], e.ByIndex[idx[0]])
	} else {
		ids := make([]string, 0, len(e.ByUUID))
		for id := range e.ByUUID {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		first = fmt.Sprintf("message %s: %v", ids[0], e.ByUUID[ids[0]])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "levee/batch: %d message(s) failed; %s", n, first)
	return b.String()
}

// HoldError fails a batch that was not handed to the batch func within max
// hold. It wraps ErrMaxHold and asks the transport to redeliver after
// RetryAfter.
type HoldError struct {
	// Held is how long the batch had waited since its first message.
	Held time.Duration
	// After is the redelivery delay requested (the batch's max_wait).
	After time.Duration
}

// Error describes the hold.
func (e *HoldError) Error() string {
	return fmt.Sprintf("%v after %s", ErrMaxHold, e.Held)
}

// Unwrap returns ErrMaxHold.
func (e *HoldError) Unwrap() error { return ErrMaxHold }

// RetryAfter returns the redelivery delay the transport should honour.
func (e *HoldError) RetryAfter() time.Duration { return e.After }

// Deferred returns true: the batch func was not run (levee.Deferral), so
// the delivery is not an attempt and not a failure.
func (e *HoldError) Deferred() bool { return true }

// LeftError is the result of a delivery whose context ended (its deadline
// passed) before the batch func had the message: the message left the
// batch. It is a deferral (levee.Deferral): the func never ran for it, so
// the delivery is no attempt and no failure, and the message is
// redelivered. It wraps the context's error.
type LeftError struct {
	Err error // the context's error
}

// Error describes the departure.
func (e *LeftError) Error() string {
	return "levee/batch: left the batch before the func ran: " + e.Err.Error()
}

// Unwrap returns the context's error.
func (e *LeftError) Unwrap() error { return e.Err }

// RetryAfter returns 0: redeliver at once.
func (e *LeftError) RetryAfter() time.Duration { return 0 }

// Deferred returns true: the batch func did not run for the message.
func (e *LeftError) Deferred() bool { return true }
