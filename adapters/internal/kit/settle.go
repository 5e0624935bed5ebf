package kit

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// SettleGrace bounds how long a closing subscriber waits for the handler
// of a message it handed over to settle it: a router closes its
// subscribers as its Close begins, while its handlers still run.
const SettleGrace = 5 * time.Second

// Verdict is what a handler did with a message.
type Verdict uint8

// Verdicts of AwaitVerdict.
const (
	Running Verdict = iota // not settled within SettleGrace
	Acked
	Nacked
)

// AwaitVerdict waits up to SettleGrace for msg to be acked or Nacked.
func AwaitVerdict(msg *message.Message) Verdict {
	t := time.NewTimer(SettleGrace)
	defer t.Stop()
	select {
	case <-msg.Acked():
		return Acked
	case <-msg.Nacked():
		return Nacked
	case <-t.C:
		return Running
	}
}
