package breaker

import (
	"github.com/levee-dev/levee/ratelimit"
)

// newRampLimiter returns the drain's token bucket: Levee's one bucket, from
// the ratelimit package, with a burst of 1 so admissions follow the ramp
// closely. It is unlimited until the drain sets its first rate.
func newRampLimiter() (*ratelimit.Limiter, error) {
	return ratelimit.New(ratelimit.WithBurst(1))
}
