package dlq

import (
	"context"
	"errors"

	"github.com/levee-dev/levee"
)

// Class is levee.Class, the error class that decides what happens to a
// failed message. It and the constants below are the root package's, named
// here too (as package os names io/fs's types and errors) so that a dlq
// policy reads on its own: they are the same type and values, not copies.
type Class = levee.Class

// The error classes (levee.ClassTransient and so on). Transient is the
// default for an error that declares no class.
const (
	ClassTransient  = levee.ClassTransient
	ClassPermanent  = levee.ClassPermanent
	ClassValidation = levee.ClassValidation
	ClassPanic      = levee.ClassPanic
	ClassExhausted  = levee.ClassExhausted
)

// Classifier overrides the default classification. It returns the class of
// err, or "" to fall back to [Classify]. It must be a pure function, safe for
// concurrent use. It is not consulted for context.Canceled, which always ends
// in a plain Nack.
type Classifier func(err error) Class

// Classify returns the default class of err: the class reported by the
// outermost error in its chain that implements [levee.Classed], else
// ClassTransient. It returns "" for a nil error.
func Classify(err error) Class {
	if err == nil {
		return ""
	}
	return normalize(levee.ClassOf(err))
}

// normalize maps unknown class values to ClassTransient.
func normalize(c Class) Class {
	if c.Known() {
		return c
	}
	return ClassTransient
}

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
