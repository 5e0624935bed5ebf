package levee

import "fmt"

// PanicError is the error of a handler or a batch func that panicked and
// was recovered: by middleware.Recover, by the dlq on each attempt (it
// recovers a panic below it itself, so the message is dead-lettered rather
// than Nacked forever), or by a batch.Batcher, which fails every message of
// the batch with it. Its class is ClassPanic.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the formatted stack of the panicking goroutine, taken where
	// the panic was recovered.
	Stack []byte
}

// Error returns "levee: panic: <value>".
func (e *PanicError) Error() string { return fmt.Sprintf("levee: panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error, so errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// ErrorClass returns "panic" (ClassPanic): a panic is never retried.
func (e *PanicError) ErrorClass() string { return string(ClassPanic) }
