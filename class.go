package levee

import "errors"

// Class is the error class that decides what becomes of a failed message:
// the dlq retries ClassTransient and dead-letters the others, and the
// breaker and the adaptive limiter do not count ClassPermanent and
// ClassValidation as a downstream's failure.
type Class string

// The error classes. ClassTransient is the class of an error that declares
// none.
const (
	// ClassTransient errors are retried with backoff until the retry budget
	// is spent; then the message is dead-lettered as ClassExhausted.
	ClassTransient Class = "transient"
	// ClassPermanent errors are dead-lettered at once, without a retry.
	ClassPermanent Class = "permanent"
	// ClassValidation marks a payload that failed validation; dead-lettered
	// at once.
	ClassValidation Class = "validation"
	// ClassPanic marks a recovered panic (*PanicError); dead-lettered at
	// once.
	ClassPanic Class = "panic"
	// ClassExhausted is the class of a dead letter whose transient error
	// outlived the retry budget (max attempts or max elapsed). An error that
	// reports it itself is dead-lettered at once.
	ClassExhausted Class = "exhausted"
)

// Known reports whether c is one of the five class constants.
func (c Class) Known() bool {
	switch c {
	case ClassTransient, ClassPermanent, ClassValidation, ClassPanic, ClassExhausted:
		return true
	}
	return false
}

// Classed is implemented by error types that declare their class. ErrorClass
// returns one of the class values ("transient", "permanent", "validation",
// "panic", "exhausted"); the dlq treats any other value as transient. It
// returns a string, not a Class, so that an error type can take part
// without importing this package. The outermost error in a chain that
// implements Classed wins.
type Classed interface {
	ErrorClass() string
}

// ClassOf returns the class declared by the outermost error in err's chain
// that implements Classed, as declared (an unknown value is returned as
// is), or ClassTransient when none does or it declares "". It returns ""
// for a nil err.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var c Classed
	if errors.As(err, &c) {
		if s := c.ErrorClass(); s != "" {
			return Class(s)
		}
	}
	return ClassTransient
}

// IsPanic reports whether any error in err's chain declares ClassPanic: a
// *PanicError, or an error of another type marked as a panic.
func IsPanic(err error) bool {
	var c Classed
	for err != nil {
		if errors.As(err, &c) && c.ErrorClass() == string(ClassPanic) {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}
