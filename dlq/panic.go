package dlq

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
)

// PanicError is the error of an attempt that panicked below the Router. In
// the canonical order Recover sits outside the dlq slot, so a panic in the
// handler would unwind through the Router straight to Recover and be Nacked
// forever; the Router therefore recovers it itself, per attempt, and treats
// it as class panic: dead-lettered at once with its value and stack. A
// *middleware.PanicError returned by an inner Recover is classified the same
// way through its ErrorClass method.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the stack of the panicking goroutine.
	Stack []byte
}

// Error returns "panic: <value>".
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// ErrorClass returns "panic".
func (e *PanicError) ErrorClass() string { return string(ClassPanic) }

// IsPanic reports whether err is, or wraps, an error of class panic.
func IsPanic(err error) bool {
	var c Classed
	return errors.As(err, &c) && c.ErrorClass() == string(ClassPanic)
}

// call runs one attempt, turning a panic into a *PanicError.
func call(next message.HandlerFunc, msg *message.Message) (out []*message.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return next(msg)
}
