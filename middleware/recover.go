package middleware

import (
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
)

// Recover turns a panic in next into a *levee.PanicError carrying the value
// and the stack, so the message is dead-lettered (with a dlq slot) or
// Nacked instead of taking the process down. It has no state and is safe
// for concurrent use. A handler that panics produces no messages.
func Recover(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (msgs []*message.Message, err error) {
		defer func() {
			if r := recover(); r != nil {
				msgs = nil
				err = &levee.PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		return next(msg)
	}
}
