package middleware

import (
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Slot names one concern in the canonical order. Slots compare in that
// order: a lower Slot is further out.
type Slot int

// The slots, outermost first. This order is the contract of the package; see
// the package documentation for why each concern sits where it does.
const (
	SlotTracing Slot = iota
	SlotMetrics
	SlotRecover
	SlotDLQ
	SlotDedup
	SlotBreaker
	SlotPriority
	SlotRateLimit
	SlotTimeout
	numSlots
)

var slotNames = [numSlots]string{"tracing", "metrics", "recover", "dlq", "dedup", "breaker", "priority", "ratelimit", "timeout"}

// String returns the slot's configuration key, e.g. "ratelimit".
func (s Slot) String() string {
	if s < 0 || s >= numSlots {
		return fmt.Sprintf("Slot(%d)", int(s))
	}
	return slotNames[s]
}

// Slots returns every slot in canonical order, outermost first.
func Slots() []Slot {
	out := make([]Slot, numSlots)
	for i := range out {
		out[i] = Slot(i)
	}
	return out
}

// ParseSlot returns the slot whose key is name.
func ParseSlot(name string) (Slot, bool) {
	for i, n := range slotNames {
		if n == name {
			return Slot(i), true
		}
	}
	return 0, false
}

// Stack holds at most one middleware per concern and always composes them in
// the canonical order, whatever order they were set in. The zero value is an
// empty Stack ready to use. A Stack is not safe for concurrent modification;
// the middleware it builds is safe for concurrent use if its parts are.
type Stack struct {
	mws    [numSlots]message.HandlerMiddleware
	labels [numSlots]string
}

// NewStack returns an empty Stack.
func NewStack() *Stack { return &Stack{} }

// Set puts mw in slot s, replacing what was there. A nil mw empties the slot.
// Set returns the Stack so calls can be chained. It panics only for a Slot
// value outside the declared constants, which is a programming error.
func (s *Stack) Set(slot Slot, mw message.HandlerMiddleware) *Stack {
	return s.SetLabeled(slot, mw, "")
}

// SetLabeled is Set with a short description of the configured concern,
// shown by Describe (for example "rate=200/s burst=20").
func (s *Stack) SetLabeled(slot Slot, mw message.HandlerMiddleware, label string) *Stack {
	if slot < 0 || slot >= numSlots {
		panic(fmt.Sprintf("levee/middleware: unknown slot %d", int(slot)))
	}
	s.mws[slot] = mw
	if mw == nil {
		label = ""
	}
	s.labels[slot] = label
	return s
}

// Tracing sets the tracing slot.
func (s *Stack) Tracing(mw message.HandlerMiddleware) *Stack { return s.Set(SlotTracing, mw) }

// Metrics sets the metrics slot.
func (s *Stack) Metrics(mw message.HandlerMiddleware) *Stack { return s.Set(SlotMetrics, mw) }

// Recover sets the recover slot.
func (s *Stack) Recover(mw message.HandlerMiddleware) *Stack { return s.Set(SlotRecover, mw) }

// DLQ sets the dlq slot (retry and dead-lettering).
func (s *Stack) DLQ(mw message.HandlerMiddleware) *Stack { return s.Set(SlotDLQ, mw) }

// Dedup sets the dedup slot (idempotent consumer).
func (s *Stack) Dedup(mw message.HandlerMiddleware) *Stack { return s.Set(SlotDedup, mw) }

// Breaker sets the breaker slot.
func (s *Stack) Breaker(mw message.HandlerMiddleware) *Stack { return s.Set(SlotBreaker, mw) }

// Priority sets the priority slot.
func (s *Stack) Priority(mw message.HandlerMiddleware) *Stack { return s.Set(SlotPriority, mw) }

// RateLimit sets the ratelimit slot.
func (s *Stack) RateLimit(mw message.HandlerMiddleware) *Stack { return s.Set(SlotRateLimit, mw) }

// Timeout sets the timeout slot.
func (s *Stack) Timeout(mw message.HandlerMiddleware) *Stack { return s.Set(SlotTimeout, mw) }

// Has reports whether slot s holds a middleware.
func (s *Stack) Has(slot Slot) bool { return slot >= 0 && slot < numSlots && s.mws[slot] != nil }

// Len returns the number of filled slots.
func (s *Stack) Len() int {
	n := 0
	for _, mw := range s.mws {
		if mw != nil {
			n++
		}
	}
	return n
}

// Middleware wraps next with every filled slot in canonical order. It has
// the message.HandlerMiddleware signature, so a Stack can be passed to
// Router.AddMiddleware or Handler.AddMiddleware as s.Middleware.
func (s *Stack) Middleware(next message.HandlerFunc) message.HandlerFunc {
	h := Chain(s.mws[:]...)(next)
	if s.filled() >= stackRoomMinLayers {
		h = withStackRoom(h) // see stackroom.go
	}
	return h
}

// filled returns the number of filled slots.
func (s *Stack) filled() int {
	n := 0
	for _, mw := range s.mws {
		if mw != nil {
			n++
		}
	}
	return n
}

// Describe returns the filled slots in canonical order, one per line, as
// "N. name label", e.g. "1. recover" or "4. ratelimit rate=200/s".
func (s *Stack) Describe() string {
	var b strings.Builder
	n := 0
	for i, mw := range s.mws {
		if mw == nil {
			continue
		}
		n++
		fmt.Fprintf(&b, "%d. %s", n, Slot(i))
		if s.labels[i] != "" {
			b.WriteString(" ")
			b.WriteString(s.labels[i])
		}
		b.WriteString("\n")
	}
	return b.String()
}
