package breaker

import (
	"time"

	"github.com/levee-dev/levee/internal/gcra"
)

// drainWakeQuantum is the least time between two wake-ups of the drain's
// bucket: the drain admits in groups of about rate*10ms (the ramp is
// followed per 100 ms within a few percent all the same), so that the
// transport under it acknowledges and fetches in batches instead of once
// per message. Admitting one message per wake-up made the drain after an
// outage cost about three times the client CPU of letting the backlog go
// at once.
const drainWakeQuantum = 10 * time.Millisecond

// newRampLimiter returns the drain's token bucket: Levee's one bucket
// (internal/gcra, which the ratelimit package builds on too), with a burst
// of 1 so admissions follow the ramp closely, woken at most once per
// drainWakeQuantum. It is unlimited until the drain sets its first rate.
// onWake runs each time the bucket's timer wakes, before it admits.
func newRampLimiter(onWake func()) (*gcra.Bucket, error) {
	b := gcra.New(true, 0, 1, gcra.DefaultCatchUp)
	b.SetWakeQuantum(drainWakeQuantum)
	b.SetWakeHook(onWake)
	return b, nil
}
