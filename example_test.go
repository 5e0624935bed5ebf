package levee_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/levee-dev/levee"
)

// A handler that meets a downstream's "429, retry after 2s" defers the
// message: the dlq does not count the delivery as an attempt, the breaker
// not as a failure, and the message comes back after the delay.
func ExampleDefer() {
	errTooMany := errors.New("payments API: 429 Too Many Requests")
	err := levee.Defer(2*time.Second, errTooMany)

	if d, ok := levee.AsDeferral(err); ok {
		fmt.Println("deferred, retry after", d.RetryAfter())
	}
	fmt.Println(errors.Is(err, errTooMany))
	// Output:
	// deferred, retry after 2s
	// true
}
