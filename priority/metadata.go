package priority

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// The priority range, of the integer in a message's levee.KeyPriority
// metadata. Values outside it are clamped; anything else (empty, not an
// integer) takes the default priority and is counted (Stats.InvalidPriority,
// metric levee.priority.invalid). It matches AMQP's recommended 0..9, so
// adapters can map it to native priorities (RabbitMQ x-max-priority 10) one
// to one.
const (
	MinPriority = 0
	MaxPriority = 9
	// Levels is the number of priority levels.
	Levels = MaxPriority - MinPriority + 1
)

// Clamp returns p limited to MinPriority..MaxPriority.
func Clamp(p int) int {
	if p < MinPriority {
		return MinPriority
	}
	if p > MaxPriority {
		return MaxPriority
	}
	return p
}

// Set writes priority p (clamped) into msg's levee_priority metadata, for
// publishers. A nil message is ignored.
func Set(msg *message.Message, p int) {
	if msg == nil {
		return
	}
	if msg.Metadata == nil {
		msg.Metadata = make(message.Metadata, 1)
	}
	msg.Metadata.Set(levee.KeyPriority, strconv.Itoa(Clamp(p)))
}

// Parse reads a levee_priority value defensively. It accepts an optional
// sign and decimal digits surrounded by ASCII spaces; values of any length
// saturate instead of overflowing, and the result is clamped to
// MinPriority..MaxPriority. ok is false (and p zero) for anything else.
// Parse never allocates.
func Parse(s string) (p int, ok bool) {
	p, st := parse(s)
	return p, st != parseInvalid
}

type parseStatus uint8

const (
	parseOK parseStatus = iota
	parseClamped
	parseInvalid
)

func parse(s string) (int, parseStatus) {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	s = s[i:j]
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, parseInvalid
	}
	const limit = 1 << 20 // far outside the range; saturate here
	v := 0
	for k := 0; k < len(s); k++ {
		c := s[k]
		if c < '0' || c > '9' {
			return 0, parseInvalid
		}
		if v < limit {
			v = v*10 + int(c-'0')
		}
	}
	if neg {
		v = -v
	}
	if c := Clamp(v); c != v {
		return c, parseClamped
	}
	return v, parseOK
}
