package dlq

import (
	"context"
	"errors"
)

// Class is the error class that decides what happens to a failed message.
// Error types take part through the [Classed] interface; the values are the
// shared Levee error classes.
type Class string

// The error classes. Transient is the default for an error that declares no
// class.
const (
	// ClassTransient errors are retried with backoff until the retry budget
	// is spent; then the message is dead-lettered as ClassExhausted.
	ClassTransient Class = "transient"
	// ClassPermanent errors are dead-lettered at once, without a retry.
	ClassPermanent Class = "permanent"
	// ClassValidation marks a payload that failed validation; dead-lettered
	// at once.
	ClassValidation Class = "validation"
	// ClassPanic marks a recovered panic (middleware.PanicError); dead-lettered
	// at once.
	ClassPanic Class = "panic"
	// ClassExhausted is the class of a dead letter whose transient error
	// outlived the retry budget (max attempts or max elapsed). An error that
	// reports it itself is dead-lettered at once.
	ClassExhausted Class = "exhausted"
)

// Classed is implemented by error types that declare their class. ErrorClass
// returns one of the class values ("transient", "permanent", "validation",
// "panic", "exhausted"); any other value is treated as transient. The
// outermost error in the chain that implements Classed wins.
type Classed interface {
	ErrorClass() string
}

// Classifier overrides the default classification. It returns the class of
// err, or "" to fall back to [Classify]. It must be a pure function, safe for
// concurrent use. It is not consulted for context.Canceled, which always ends
// in a plain Nack.
type Classifier func(err error) Class

// Classify returns the default class of err: the class reported by the
// outermost error in its chain that implements [Classed], else
// ClassTransient. It returns "" for a nil error.
func Classify(err error) Class {
	if err == nil {
		return ""
	}
	var c Classed
	if errors.As(err, &c) {
		return normalize(Class(c.ErrorClass()))
	}
	return ClassTransient
}

// normalize maps unknown class values to ClassTransient.
func normalize(c Class) Class {
	switch c {
	case ClassTransient, ClassPermanent, ClassValidation, ClassPanic, ClassExhausted:
		return c
	}
	return ClassTransient
}

// retryable reports whether c is retried.
func (c Class) retryable() bool { return c == ClassTransient }

// isShutdown reports whether err is a cancellation, which is neither retried
// nor dead-lettered.
func isShutdown(err error) bool { return errors.Is(err, context.Canceled) }

// classMark gives an error a class.
type classMark struct {
	err   error
	class Class
}

func (e *classMark) Error() string      { return e.err.Error() }
func (e *classMark) Unwrap() error      { return e.err }
func (e *classMark) ErrorClass() string { return string(e.class) }

// WithClass marks err with class c (one of the Class constants; others are
// treated as transient). errors.Is and errors.As see through the mark.
// WithClass(nil, c) returns nil.
func WithClass(err error, c Class) error {
	if err == nil {
		return nil
	}
	return &classMark{err: err, class: c}
}

// Permanent marks err as permanent: a message whose handler returns it is
// dead-lettered at once, without a retry. errors.Is and errors.As see through
// the mark. Permanent(nil) returns nil.
func Permanent(err error) error {
	return WithClass(err, ClassPermanent)
}

// IsPermanent reports whether the default classification of err is
// ClassPermanent.
func IsPermanent(err error) bool { return Classify(err) == ClassPermanent }
