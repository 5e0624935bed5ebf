package middleware

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ClassPanic is the error class reported by *PanicError. The dlq package
// dead-letters errors of this class at once instead of retrying them.
const ClassPanic = "panic"

// PanicError is returned by Recover when the handler panicked. It carries the
// recovered value and the stack of the panicking goroutine.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the formatted stack trace taken where the panic was recovered.
	Stack []byte
}

// Error returns "panic: <value>".
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error, so errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// ErrorClass returns ClassPanic. The dlq and breaker packages read error
// classes through this method: a panic is never retried.
func (e *PanicError) ErrorClass() string { return ClassPanic }

// Recover turns a panic in next into a *PanicError carrying the value and
// the stack, so the message is dead-lettered (with a dlq slot) or Nacked
// instead of taking the process down. It has no state and is safe for
// concurrent use. A handler that panics produces no messages.
func Recover(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (msgs []*message.Message, err error) {
		defer func() {
			if r := recover(); r != nil {
				msgs = nil
				err = &PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		return next(msg)
	}
}

// IsPanic reports whether err is, or wraps, an error of class "panic": a
// *PanicError, or a panic caught by another layer (the dlq slot catches
// panics on each attempt itself, as *dlq.PanicError).
func IsPanic(err error) bool {
	var c interface{ ErrorClass() string }
	for err != nil {
		if errors.As(err, &c) && c.ErrorClass() == ClassPanic {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}
