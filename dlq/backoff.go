package dlq

import (
	"fmt"
	"math"
	"time"
)

// Backoff is the retry policy: exponential backoff with full jitter. The
// delay before retry n (n = 1 after the first failed attempt) is drawn
// uniformly from [0, min(Max, Initial*Multiplier^(n-1))] (full jitter).
type Backoff struct {
	// Initial is the cap of the first delay. Must be > 0. Default 100ms.
	Initial time.Duration
	// Max caps every delay. Must be >= Initial. Default 10s.
	Max time.Duration
	// Multiplier grows the cap after each retry. Must be >= 1. Default 2.
	Multiplier float64
	// MaxAttempts is the number of handler attempts, the first included,
	// before a transient error is dead-lettered as exhausted. Must be >= 1;
	// 1 means no retry. Default 5.
	MaxAttempts int
	// MaxElapsed bounds the time from the first failure to the start of a
	// retry; a retry that would start later is not made and the message is
	// dead-lettered as exhausted. Zero means no bound. Default 0.
	MaxElapsed time.Duration
}

// DefaultBackoff returns the default policy: initial 100ms, max 10s,
// multiplier 2, 5 attempts, no elapsed bound.
func DefaultBackoff() Backoff {
	return Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, MaxAttempts: 5}
}

// Validate reports the first invalid setting, as an error wrapping
// ErrInvalidConfig and naming the key (initial, max, multiplier,
// max_attempts, max_elapsed).
func (b Backoff) Validate() error {
	switch {
	case b.Initial <= 0:
		return fieldErr("initial", "must be > 0, got %s", b.Initial)
	case b.Max < b.Initial:
		return fieldErr("max", "must be >= initial (%s), got %s", b.Initial, b.Max)
	case math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0) || b.Multiplier < 1:
		return fieldErr("multiplier", "must be a finite number >= 1, got %v", b.Multiplier)
	case b.MaxAttempts < 1:
		return fieldErr("max_attempts", "must be >= 1, got %d", b.MaxAttempts)
	case b.MaxElapsed < 0:
		return fieldErr("max_elapsed", "must be >= 0, got %s", b.MaxElapsed)
	}
	return nil
}

// Cap returns the upper bound of the delay before retry n (n >= 1):
// min(Max, Initial*Multiplier^(n-1)). It returns Initial for n < 1.
func (b Backoff) Cap(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	c := float64(b.Initial) * math.Pow(b.Multiplier, float64(n-1))
	if math.IsNaN(c) || c >= float64(b.Max) {
		return b.Max
	}
	return time.Duration(c)
}

// Delay returns the delay before retry n for a jitter draw j in [0, 1]:
// j*Cap(n). A j outside [0, 1] (or NaN, taken as 0) is clamped into it, so
// Delay never exceeds Cap(n) and is never negative.
func (b Backoff) Delay(n int, j float64) time.Duration {
	if !(j > 0) { // also NaN
		j = 0
	} else if j > 1 {
		j = 1
	}
	return time.Duration(j * float64(b.Cap(n)))
}

// SettingError names a configuration key in an error wrapping ErrInvalidConfig.
// Config.Validate turns it into a located config error.
type SettingError struct {
	Key string
	Msg string
}

// Error returns "levee/dlq: invalid configuration: key: msg".
func (e *SettingError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidConfig, e.Key, e.Msg)
}

// Unwrap returns ErrInvalidConfig.
func (e *SettingError) Unwrap() error { return ErrInvalidConfig }

func fieldErr(key, format string, args ...any) error {
	return &SettingError{Key: key, Msg: fmt.Sprintf(format, args...)}
}
