package dlq

import (
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
)

// call runs one attempt, turning a panic into a *levee.PanicError. In the
// canonical order Recover sits outside the dlq slot, so a panic in the
// handler would unwind through the dlq straight to Recover and be Nacked
// forever; the dlq therefore recovers it itself, per attempt, and treats it
// as class panic: dead-lettered at once with its value and stack.
func call(next message.HandlerFunc, msg *message.Message) (out []*message.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &levee.PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return next(msg)
}
