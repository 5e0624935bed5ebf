package breaker

import (
	"github.com/levee-dev/levee/internal/gcra"
)

// newRampLimiter returns the drain's token bucket: Levee's one bucket
// (internal/gcra, which the ratelimit package builds on too), with a burst
// of 1 so admissions follow the ramp closely. It is unlimited until the
// drain sets its first rate.
func newRampLimiter() (*gcra.Bucket, error) {
	return gcra.New(true, 0, 1, gcra.DefaultCatchUp), nil
}
