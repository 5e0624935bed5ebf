package testkit

import (
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// VerifyMain runs the package's tests and fails if goroutines are left
// behind. Use it as: func TestMain(m *testing.M) { testkit.VerifyMain(m) }.
func VerifyMain(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, opts...)
}

// Synctest runs f in a testing/synctest bubble, where time is fake and
// advances only when every goroutine in the bubble is durably blocked.
func Synctest(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, f)
}

// Advance sleeps d of (fake) time and then waits until every goroutine in
// the bubble is durably blocked, so effects due by then have happened. Call
// it only inside a synctest bubble.
func Advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}
