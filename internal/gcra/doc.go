// Package gcra is Levee's one token bucket: a GCRA scheduler that admits by
// schedule, not by wake-up, so a limit holds its rate precisely (see
// Bucket). The ratelimit package builds its limiters on it, the breaker's
// drain ramp moves one bucket's rate, and the dlq's replayer paces replays
// with one. A Bucket is safe for concurrent use; its only goroutine is a
// timer, stopped by Close.
package gcra
